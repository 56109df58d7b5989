# runwall: the only commands a fresh machine (Debian, root) needs.
#   make demo   install, build, run a sample build under `runwall exec` in block mode, serve the report
#   make test   install, build, run every test
#   make bench  install, build, print performance ratios against baselines run side by side
.PHONY: deps build test demo bench typecheck clean

deps:
	./scripts/install-deps.sh

build: deps
	npx tsc -p tsconfig.build.json
	chmod +x dist/cli/main.js

typecheck: deps
	npx tsc -p tsconfig.test.json

test: build typecheck
	npx vitest run

demo: build
	./scripts/demo.sh

bench: build
	npx tsx bench/run.ts

clean:
	rm -rf dist
