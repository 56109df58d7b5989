/**
 * Run in the bench's P-host by bench/l7.ts: opens COUNT TCP connections to
 * ADDRESS:443 one after another, sends a TLS ClientHello naming SNI on each and
 * waits for the server's first byte (the test internet answers with an alert).
 * Prints the latencies (ms, connect() to first byte) as one JSON line.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { clientHelloRecords } from '../test/helpers/tls-client-hello-encoder.js';

const [address = '', sni = '', countText = '100'] = process.argv.slice(2);
const hello = clientHelloRecords({ serverName: sni, extensionsAfter: [{ type: 51, data: new Uint8Array(64).fill(1) }] });
const TIMEOUT_MS = 5000;

function once(): Promise<number> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const socket = net.connect({ host: address, port: 443 });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${address}:443 within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    socket.on('connect', () => socket.write(hello));
    socket.once('data', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(performance.now() - began);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

const latencies: number[] = [];
for (let i = 0; i < Number(countText); i++) latencies.push(await once());
process.stdout.write(`${JSON.stringify(latencies)}\n`);
