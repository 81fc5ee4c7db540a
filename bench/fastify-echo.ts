/**
 * The ceiling for the serving benchmark: a bare Fastify server that parses a JSON body and
 * serialises it back (no auth, no metrics, no validation, no model). Whatever modelplane reaches is
 * compared with this, on the same machine and load generator.
 *
 *   node --import tsx bench/fastify-echo.ts [port]
 */
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 8602);
const app = Fastify({ logger: false });
app.post('/predict', async (request) => request.body);
app.post('/batch-predict', async (request) => request.body);
app.get('/health', async () => ({ status: 'healthy' }));
await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`echo listening on ${port}\n`);
