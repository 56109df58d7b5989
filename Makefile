# runwall: the only commands a fresh machine (Debian, root) needs.
#   make demo   install, build, run a sample build under `runwall exec` in block mode, serve the report
#   make test   install, build, run every test
#   make bench  install, build, print performance ratios against baselines run side by side
.PHONY: deps build test demo bench typecheck clean

deps:
	./scripts/install-deps.sh

# tsc, then esbuild bundles the CLI (scripts/bundle-cli.ts: start-up time).
build: deps
	npm run build

typecheck: deps
	npx tsc -p tsconfig.test.json

# The plain closing line ('N passed, N failed') is for CI, which reads it; the exit status is vitest's.
test: build typecheck
	@npx vitest run --reporter=default --reporter=json --outputFile=.vitest-results.json; status=$$?; \
	  node -e "const r=require('./.vitest-results.json'); console.log(r.numPassedTests + ' passed, ' + r.numFailedTests + ' failed')" || true; \
	  exit $$status

demo: build
	./scripts/demo.sh

bench: build
	npx tsx bench/run.ts

clean:
	rm -rf dist
