"""sslyze against one live ctrpc/1 server; prints one JSON object for the suite to check.

    scan.py HOST PORT CLIENT_CERT CLIENT_KEY

Run by Tests/CallTraceTLSTests/TLSScanTests.swift with the sslyze that `make scanner` installs.

ctrpc/1 servers refuse a ClientHello without ALPN "ctrpc/1", and sslyze has no ALPN option.
The shim below is the only non-sslyze code here: nassl (sslyze's TLS layer) links its own
OpenSSL statically and exports none of it, but its symbol table still names every function,
so SSL_set_alpn_protos is found there and called on each SSL object nassl creates, before its
handshake. Everything else is sslyze's own scanning.
"""
import ctypes
import json
import subprocess
import sys
from pathlib import Path

import nassl._nassl
import nassl._nassl_legacy
from nassl.ssl_client import BaseSslClient
from sslyze import (ClientAuthenticationCredentials, ScanCommand, Scanner, ServerNetworkConfiguration,
                    ServerNetworkLocation, ServerScanRequest, ServerScanStatusEnum)
from sslyze.server_connectivity import (TlsVersionEnum, _detect_client_auth_requirement_with_tls_1_2_or_below,
                                        _detect_client_auth_requirement_with_tls_1_3)

ALPN = b"\x07ctrpc/1"  # the wire form: a length byte, then the name


def hidden_function(module, name):
    """The address of a local (unexported) function of a loaded extension module."""
    path = module.__file__
    symbols = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    offset = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" " + name))
    with open("/proc/self/maps") as maps:
        base = min(int(line.split("-")[0], 16) for line in maps if line.rstrip().endswith(path))
    return ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint)(base + offset)


SET_ALPN = {module: hidden_function(module, "SSL_set_alpn_protos") for module in (nassl._nassl, nassl._nassl_legacy)}
_init_ssl_objects = BaseSslClient._init_ssl_objects


def _init_ssl_objects_offering_ctrpc(self):
    _init_ssl_objects(self)
    # nassl's SSL object is PyObject_HEAD (16 bytes) followed by its SSL pointer.
    ssl = ctypes.c_void_p.from_address(id(self._ssl) + 16).value
    if SET_ALPN[self._NASSL_MODULE](ssl, ALPN, len(ALPN)) != 0:
        raise RuntimeError("SSL_set_alpn_protos failed")


BaseSslClient._init_ssl_objects = _init_ssl_objects_offering_ctrpc

VERSIONS = {
    "SSL 2.0": ScanCommand.SSL_2_0_CIPHER_SUITES, "SSL 3.0": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLS 1.0": ScanCommand.TLS_1_0_CIPHER_SUITES, "TLS 1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLS 1.2": ScanCommand.TLS_1_2_CIPHER_SUITES, "TLS 1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}


def location_and_configuration(host, port, credentials):
    return (ServerNetworkLocation(hostname=host, port=port, ip_address=host),
            ServerNetworkConfiguration(tls_server_name_indication=host, tls_client_auth_credentials=credentials))


def scan(host, port, credentials):
    location, configuration = location_and_configuration(host, port, credentials)
    request = ServerScanRequest(
        server_location=location, network_configuration=configuration,
        scan_commands=set(VERSIONS.values()) | {ScanCommand.TLS_COMPRESSION, ScanCommand.SESSION_RENEGOTIATION,
                                                ScanCommand.SESSION_RESUMPTION, ScanCommand.TLS_1_3_EARLY_DATA,
                                                ScanCommand.HEARTBLEED, ScanCommand.OPENSSL_CCS_INJECTION})
    scanner = Scanner()
    scanner.queue_scans([request])
    return next(iter(scanner.get_results()))


def client_auth_without_certificate(host, port):
    """sslyze's own probes, without a certificate: under TLS 1.3 a server that requires one can
    only refuse after the handshake, so sslyze's scan (which holds a certificate) reports none."""
    location, configuration = location_and_configuration(host, port, None)
    return {
        "TLS 1.3": _detect_client_auth_requirement_with_tls_1_3(location, configuration).name,
        "TLS 1.2": _detect_client_auth_requirement_with_tls_1_2_or_below(
            location, configuration, TlsVersionEnum.TLS_1_2, "ECDHE-ECDSA-AES128-GCM-SHA256").name,
    }


def value(attempt, read):
    """A scan command's result, or the reason it has none."""
    if attempt.result is None:
        return {"error": str(attempt.error_reason), "trace": str(attempt.error_trace)[-300:]}
    return read(attempt.result)


def main():
    host, port, certificate, key = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    result = scan(host, port, ClientAuthenticationCredentials(certificate_chain_path=certificate, key_path=key))
    summary = {
        "connectivity": result.scan_status.name,
        "connectivity_error": str(result.connectivity_error_trace)[-300:] if result.connectivity_error_trace else None,
        "client_certificate": client_auth_without_certificate(host, port),
    }
    if result.scan_status == ServerScanStatusEnum.COMPLETED:
        attempts = result.scan_result
        for version, command in VERSIONS.items():
            attempt = getattr(attempts, command.value)
            # Each accepted suite, with its key exchange (none would mean no forward secrecy).
            summary[version] = value(attempt, lambda r: sorted(
                f"{s.cipher_suite.name} {s.ephemeral_key.type_name if s.ephemeral_key else 'no-ephemeral-key'}"
                for s in r.accepted_cipher_suites))
        summary["compression"] = value(attempts.tls_compression, lambda r: r.supports_compression)
        summary["client_renegotiation"] = value(attempts.session_renegotiation, lambda r: r.is_vulnerable_to_client_renegotiation_dos)
        summary["secure_renegotiation"] = value(attempts.session_renegotiation, lambda r: r.supports_secure_renegotiation)
        summary["resumption_session_id"] = value(attempts.session_resumption, lambda r: r.session_id_resumption_result.name)
        summary["resumption_ticket"] = value(attempts.session_resumption, lambda r: r.tls_ticket_resumption_result.name)
        summary["early_data"] = value(attempts.tls_1_3_early_data, lambda r: r.supports_early_data)
        summary["heartbleed"] = value(attempts.heartbleed, lambda r: r.is_vulnerable_to_heartbleed)
        summary["ccs_injection"] = value(attempts.openssl_ccs_injection, lambda r: r.is_vulnerable_to_ccs_injection)
    print(json.dumps(summary, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
