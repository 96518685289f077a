/** The API's OpenAPI 3.1 description, served at /openapi.json. Kept beside the routes it describes. */
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } }, required: ['error', 'message'] };
const session = { name: 'TorPlus-Session', in: 'header', required: true, schema: { type: 'string' }, description: 'the session token the bridge handed out' };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'TorPlus Bridge gateway API', version: '1' },
  components: {
    securitySchemes: { admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } },
    schemas: { Error: error },
  },
  paths: {
    '/healthz': { get: { summary: 'tor, the onion, the upstream and payments', responses: { 200: { description: 'all healthy' }, 503: { description: 'something is not' } } } },
    '/v1/payment-requests/{id}': {
      get: { summary: 'a payment request: amount, destination, memo, SEP-7 URI', parameters: [idParam], responses: { 200: { description: 'the request' }, 404: json(error) } },
    },
    '/v1/payment-requests/{id}/payments': {
      post: {
        summary: 'pay a request with a signed transaction (checked, then submitted) or the hash of one already submitted',
        parameters: [idParam],
        requestBody: json({ oneOf: [{ type: 'object', properties: { xdr: { type: 'string' } }, required: ['xdr'] }, { type: 'object', properties: { hash: { type: 'string', pattern: '^[0-9a-f]{64}$' } }, required: ['hash'] }] }),
        responses: { 201: { description: 'the receipt' }, 400: json(error), 409: json(error) },
      },
    },
    '/v1/tabs': {
      post: {
        summary: 'open a tab: pre-signed cumulative payments, settled by the bridge',
        requestBody: json({ type: 'object', properties: { request_id: { type: 'string' }, session: { type: 'string' }, payer: { type: 'string' } }, required: ['payer'] }),
        responses: { 201: { description: 'the tab terms' }, 400: json(error) },
      },
    },
    '/v1/tabs/{id}': {
      get: { summary: 'a tab', parameters: [idParam], responses: { 200: { description: 'the tab' }, 404: json(error) } },
      post: { summary: 'the next transaction of a tab (cumulative amount)', parameters: [idParam], requestBody: json({ type: 'object', properties: { xdr: { type: 'string' } }, required: ['xdr'] }), responses: { 200: { description: 'receipt and tab' }, 400: json(error) } },
    },
    '/v1/session': { get: { summary: 'bytes used, credit left, receipts', parameters: [session], responses: { 200: { description: 'the state' }, 404: json(error) } } },
    '/v1/receipts': { get: { summary: "the session's receipts", parameters: [session], responses: { 200: { description: 'receipts' } } } },
    '/v1/events': { get: { summary: 'SSE: payment-requested, payment-complete', parameters: [session], responses: { 200: { description: 'text/event-stream' } } } },
    '/v1/admin/earnings': { get: { summary: "the publisher's earnings", security: [{ admin: [] }], responses: { 200: { description: 'earnings' }, 401: json(error) } } },
    '/v1/admin/events': { get: { summary: 'SSE of every payment event', security: [{ admin: [] }], responses: { 200: { description: 'text/event-stream' } } } },
  },
} as const;
