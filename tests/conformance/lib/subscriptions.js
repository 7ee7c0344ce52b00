// Subscription bodies (Subscriptions R5 Backport IG 1.1.0 on R4) and the
// topics the server lists in its CapabilityStatement.
export const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
export const TOPIC_LIST_EXTENSION = `${BACKPORT}/capabilitystatement-subscriptiontopic-canonical`;

// The topic canonicals the CapabilityStatement lists (backport extension, on
// the Subscription resource entry or on rest).
export function topicsOf(capability) {
  const urls = [];
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    if (node.url === TOPIC_LIST_EXTENSION && node.valueCanonical) urls.push(node.valueCanonical);
    Object.values(node).forEach(visit);
  };
  visit(capability);
  return [...new Set(urls)];
}

// A rest-hook Subscription. `payload`: empty | id-only | full-resource.
export function subscription({ topic, endpoint, payload = 'id-only', filters = [], heartbeat, headers, maxCount }) {
  const channelExt = [];
  if (heartbeat) channelExt.push({ url: `${BACKPORT}/backport-heartbeat-period`, valueUnsignedInt: heartbeat });
  if (maxCount) channelExt.push({ url: `${BACKPORT}/backport-max-count`, valueUnsignedInt: maxCount });
  channelExt.push({ url: `${BACKPORT}/backport-timeout`, valueUnsignedInt: 5 });
  const body = {
    resourceType: 'Subscription',
    meta: { profile: [`${BACKPORT}/backport-subscription`] },
    status: 'requested',
    reason: 'conformance suite',
    criteria: topic,
    channel: {
      extension: channelExt,
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: payload }] },
    },
  };
  if (filters.length > 0) {
    body._criteria = { extension: filters.map((f) => ({ url: `${BACKPORT}/backport-filter-criteria`, valueString: f })) };
  }
  if (headers) body.channel.header = headers;
  return body;
}
