-- wrk script for bench/fhir_bench.sh: every request is a durable FHIR create,
-- POST [base]/Goal with a US Core Goal, spread over 32 patients
-- (bench-load-0 .. bench-load-31) like wmty_bench's CreateGoal clients.
-- The path comes from the URL given to wrk ([base]/Goal).
local provenance = '{"resourceType":"Provenance","agent":[{"type":{"coding":[{"system":' ..
  '"http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},' ..
  '"who":{"reference":"Practitioner/rn-bench"},"role":[{"text":"RN"}]}]}'

local function goal(patient)
  return '{"resourceType":"Goal","lifecycleStatus":"active",' ..
    '"achievementStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/goal-achievement","code":"in-progress"}]},' ..
    '"category":[{"coding":[{"system":"http://loinc.org","code":"87528-6","display":"Personal health goal"}]}],' ..
    '"priority":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/goal-priority","code":"high-priority"}]},' ..
    '"description":{"text":"Walk to the end of the garden without resting"},' ..
    '"subject":{"reference":"Patient/' .. patient .. '"},' ..
    '"startDate":"2026-11-01","target":[{"dueDate":"2027-03-01"}],' ..
    '"expressedBy":{"reference":"Patient/' .. patient .. '"}}'
end

local requests = {}
local next_request = 1

function init(args)
  local headers = {
    ["Content-Type"] = "application/fhir+json",
    ["Accept"] = "application/fhir+json",
    ["X-Provenance"] = provenance,
  }
  -- Headers given to wrk with -H (bench/run.sh: the bearer token) go on
  -- every request too: wrk.format uses wrk.headers only when given none.
  for name, value in pairs(wrk.headers) do
    if headers[name] == nil then headers[name] = value end
  end
  for i = 0, 31 do
    requests[#requests + 1] = wrk.format("POST", nil, headers, goal("bench-load-" .. i))
  end
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end
