-- wrk script for bench/run.sh: GETs of paths drawn at random.
--   wrk ... -s fhir_pick.lua http://host:port -- IDS_FILE PREFIX
-- Each request is GET PREFIX..<a line of IDS_FILE> (IDS_FILE "-": always
-- PREFIX), e.g. /fhir/Goal/ with the goal ids of wmty_datagen's bench
-- patients, or /fhir/Goal?patient= with the patients. The same script drives
-- the bare baseline server (IDS_FILE "-", PREFIX "/"), so the client does the
-- same work against both. run.sh appends bench/wrk_report.lua to it (wrk
-- takes one script) for the WRKSTATS line at the end.
local paths = {}

function init(args)
  local file, prefix = args[1] or "-", args[2] or "/"
  if file ~= "-" then
    for line in io.lines(file) do
      if #line > 0 then paths[#paths + 1] = prefix .. line end
    end
  end
  if #paths == 0 then paths[1] = prefix end
  local salt = tonumber(tostring(paths):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + salt % 1000003)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
