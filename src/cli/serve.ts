import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { startGateway } from '../share/gateway.js';
import { storeFromArgs, storeOptions, type StoreArgs } from './common.js';

interface ServeArgs extends StoreArgs {
  listen: string;
  quiet: boolean;
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*)\]?:)?(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port < 65536)) throw new UserError(`--listen ${JSON.stringify(text)}: use PORT or HOST:PORT (e.g. 127.0.0.1:8480)`);
  return { host: m[1] || '127.0.0.1', port };
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve share links from a store: needs the store\'s credentials only, never the passphrase (it cannot decrypt)',
  builder: (y: Argv) => storeOptions(y)
    .option('listen', { type: 'string', default: '127.0.0.1:8480', describe: 'Address to listen on (HOST:PORT; put a TLS proxy or CDN in front for the internet)' })
    .option('quiet', { type: 'boolean', default: false, describe: 'No request log' }) as any,
  handler: async (argv) => {
    const store = storeFromArgs(argv, (m) => process.stderr.write(`veilfs serve: ${m}\n`));
    const log = argv.quiet ? () => {} : (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const server = await startGateway({ store, log }, parseListen(argv.listen));
    const address = server.address();
    const where = typeof address === 'object' && address ? `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : argv.listen;
    process.stderr.write(`veilfs serve: serving share links from ${store.location} on http://${where}\n`);
    const stop = () => server.close(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await new Promise(() => {});
  },
};
