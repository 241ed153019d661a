# The README's two commands: `make demo` (dev appliance on loopback) and `make test` (the
# whole suite). Both install the Debian packages they need first (as root).
.PHONY: all deps build test demo down clean

all: build

deps:
	@if [ "$$(id -u)" = 0 ]; then scripts/install-deps; else sudo scripts/install-deps; fi

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j2

test:
	scripts/test

demo: build
	build/certconnctl dev up
	build/certconnctl dev demo
	@echo
	@echo "The dev appliance keeps running (state in ./.dev). Stop it with: make down"
	@echo "(or build/certconnctl dev down)."

down:
	build/certconnctl dev down

clean:
	rm -rf build build-asan build-fuzz
