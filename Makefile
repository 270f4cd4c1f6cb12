# CallTrace — every set-up and check an engineer or CI needs.
#   make run     the four services on localhost (development PKI and keys under var/dev)
#   make test    install what is missing, build, run the whole suite
#   make proto   regenerate Swift, C and method tables from proto/ (commit the result)
#   make bench   release build (Swift runtime linked in, as deployed), then `calltrace-bench rpc`

SHELL := /bin/bash
APT_PACKAGES := libssl-dev libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler pkg-config gcc
PROTO_FILES := $(shell find proto -name '*.proto' | sort)
PROTOC_GEN_SWIFT := .build-protoc-gen-swift/release/protoc-gen-swift
SWIFT_BUILD_FLAGS ?=

.PHONY: deps build run test check-crypto-deps proto bench clean

## Install the Debian packages the project needs (only those missing).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

## The dependency graph must hold no second TLS or crypto library: OpenSSL is the only one.
check-crypto-deps: deps
	@graph=$$(swift package show-dependencies --format json); \
	if echo "$$graph" | grep -Eiq '"(identity|name)" *: *"(swift-nio-ssl|swift-crypto|boringssl|swift-certificates|swift-tls|cryptoswift|jwt-kit)"'; then \
	  echo "error: a second TLS/crypto library is in the dependency graph; CallTrace uses the system OpenSSL only"; exit 1; \
	fi; echo "crypto dependencies: system OpenSSL only"

run: deps
	bash scripts/dev-run.sh

test: deps check-crypto-deps
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	swift test --skip-build --parallel --num-workers 2 $(SWIFT_BUILD_FLAGS)

bench: deps
	swift build -c release --static-swift-stdlib --product calltrace-bench
	swift build -c release --static-swift-stdlib --product ctrpc-floor
	.build/release/calltrace-bench rpc --rounds 5 --floor .build/release/ctrpc-floor

$(PROTOC_GEN_SWIFT):
	swift package resolve
	swift build -c release --product protoc-gen-swift \
	  --package-path .build/checkouts/swift-protobuf --scratch-path .build-protoc-gen-swift

## Regenerate everything derived from proto/. Commit the output.
proto: deps $(PROTOC_GEN_SWIFT)
	rm -rf Sources/CallTraceProto/Generated clients/c/generated
	mkdir -p Sources/CallTraceProto/Generated clients/c/generated
	protoc -I proto --plugin=protoc-gen-swift=$(PROTOC_GEN_SWIFT) \
	  --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
	  --swift_out=Sources/CallTraceProto/Generated $(PROTO_FILES)
	protoc-c -I proto --c_out=clients/c/generated $(PROTO_FILES)
	swift build --product calltrace-protogen
	protoc -I proto --descriptor_set_out=/dev/stdout $(PROTO_FILES) \
	  | .build/debug/calltrace-protogen > Sources/CallTraceProto/Generated/Methods.swift
	mkdir -p Sources/CallTraceAPI/Generated
	protoc -I proto --include_source_info --descriptor_set_out=/dev/stdout $(PROTO_FILES) \
	  | .build/debug/calltrace-protogen --services > Sources/CallTraceAPI/Generated/Services.swift

clean:
	rm -rf .build .build-protoc-gen-swift clients/c/build
