/**
 * agent/dns: the DNS proxy at the heart of the egress engine, and its pure
 * message decoder. The proxy is generic: the engine glues it to policy and
 * firewall through a `DnsGate`.
 */
export {
  buildLocalAnswer,
  decodeQuery,
  decodeResponse,
  withId,
  type DecodedResponse,
  type DnsAddress,
  type DnsAnswerRecord,
  type DnsQuestionInfo,
  type LocalRcode,
} from './dns-message.js';
export { TcpFrameDecoder, encodeTcpFrame } from './tcp-frame.js';
export {
  DnsProxy,
  clientAddress,
  type DnsExchange,
  type DnsGate,
  type DnsProxyOptions,
  type DnsProxyStats,
  type QueryDecision,
  type ResponseDecision,
} from './dns-proxy.js';
