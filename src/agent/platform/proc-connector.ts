/**
 * The proc connector: every fork, exec and exit on the machine, from the
 * kernel, in order, with host pids. Needs CAP_NET_ADMIN in the initial user
 * namespace; the socket lives in the initial network namespace (the only one
 * the connector sends to). Decoding is proc-connector-message.ts (pure).
 */
import { RunwallError } from '../../protocol/index.js';
import { NETLINK_CONNECTOR, NetlinkSocket } from './netlink-socket.js';
import {
  CN_IDX_PROC,
  PROC_CN_MCAST_IGNORE,
  PROC_CN_MCAST_LISTEN,
  decodeProcConnector,
  encodeProcSubscription,
  type ProcEvent,
} from './proc-connector-message.js';

export interface ProcConnectorProblem {
  readonly code: 'RW_PROCESS_EVENTS_LOST' | 'RW_INTERNAL';
  readonly message: string;
}

export class ProcConnector {
  private constructor(private readonly socket: NetlinkSocket) {}

  static open(onEvent: (event: ProcEvent) => void, onProblem: (problem: ProcConnectorProblem) => void): ProcConnector {
    const socket = NetlinkSocket.open({
      protocol: NETLINK_CONNECTOR,
      groups: CN_IDX_PROC,
      initialNetns: true,
      receiveBufferBytes: 16 << 20,
      datagramsPerWakeup: 1024,
      name: 'proc connector',
    });
    try {
      socket.send(encodeProcSubscription(PROC_CN_MCAST_LISTEN, 0));
    } catch (error) {
      void socket.close();
      throw error instanceof RunwallError ? error : new RunwallError('RW_SETUP_FAILED', `cannot subscribe to the proc connector: ${String(error)}`);
    }
    const connector = new ProcConnector(socket);
    socket.start(
      (datagram) => {
        const decoded = decodeProcConnector(datagram);
        for (const event of decoded.events) onEvent(event);
        for (const message of decoded.errors) onProblem({ code: 'RW_INTERNAL', message: `proc connector: ${message}` });
      },
      (problem) => onProblem({ code: problem.lost ? 'RW_PROCESS_EVENTS_LOST' : 'RW_INTERNAL', message: problem.message }),
    );
    return connector;
  }

  /** Delivers what is queued now: the audit side calls this first, so forks are known before the execs that follow them. */
  drainNow(): void {
    this.socket.drain();
  }

  async close(): Promise<void> {
    try {
      this.socket.send(encodeProcSubscription(PROC_CN_MCAST_IGNORE, 0));
    } catch {
      // The listener count drops when the socket closes on kernels that track it per socket.
    }
    await this.socket.close();
  }
}
