// Run inside a job: opens TCP to HOST:PORT, sends a TLS ClientHello naming SNI in two writes
// (Nagle off, DELAY ms apart, split at byte SPLIT), and prints what came back:
// `alert` (the server read the hello and answered), `reset`, `closed` or `timeout`.
import net from 'node:net';
import { clientHelloRecords } from '../../helpers/tls-client-hello-encoder.js';

const [host = '', portText = '443', sni = '', splitText = '40', delayText = '300'] = process.argv.slice(2);
const hello = clientHelloRecords({ serverName: sni, extensionsAfter: [{ type: 51, data: new Uint8Array(64).fill(1) }] });
const split = Number(splitText);

const outcome = await new Promise<string>((resolve) => {
  const socket = net.connect({ host, port: Number(portText) });
  socket.setNoDelay(true);
  const timer = setTimeout(() => {
    socket.destroy();
    resolve('timeout');
  }, 8000);
  const done = (result: string): void => {
    clearTimeout(timer);
    socket.destroy();
    resolve(result);
  };
  socket.on('connect', () => {
    socket.write(hello.subarray(0, split));
    setTimeout(() => socket.write(hello.subarray(split)), Number(delayText));
  });
  socket.on('data', (data: Buffer) => done(data[0] === 0x15 ? 'alert' : 'data'));
  socket.on('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNRESET' ? 'reset' : `error ${error.code ?? error.message}`));
  socket.on('end', () => done('closed'));
});
process.stdout.write(`${outcome}\n`);
