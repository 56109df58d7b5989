// The L7 bench's reading of iptables counters: packets the rules handed to the agent.
import { describe, expect, it } from 'vitest';
import { queuedPackets } from '../../bench/l7.js';

describe('queuedPackets', () => {
  it('sums the packet counters of the NFQUEUE rules of `iptables -L -v -x -n`', () => {
    const listing = `Chain RWL7-agent (2 references)
    pkts      bytes target     prot opt in     out     source               destination
       2      195 RWL7S-agent  0    --  *      *       0.0.0.0/0            0.0.0.0/0           [goto]  mark match 0x1000000/0x1000000
    3864   200928 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0            connmark match  0x2000000/0x6000000
       0        0 REJECT     6    --  *      *       0.0.0.0/0            0.0.0.0/0            connmark match  0x4000000/0x6000000 reject-with tcp-reset
       2      195 NFQUEUE    6    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate ESTABLISHED ctdir ORIGINAL connbytes 0:32 connbytes mode packets connbytes direction original NFQUEUE num 19999
       1       60 NFQUEUE    6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x17/0x02 tcp option=34 NFQUEUE num 19999
`;
    expect(queuedPackets(listing)).toBe(3);
    expect(queuedPackets('')).toBe(0);
  });
});
