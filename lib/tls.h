/*
 * OpenSSL contexts for our servers and clients.
 *
 * Server: the full chain from tls_cert (so iOS Mail gets intermediates),
 * tls_key, minimum protocol from tls_min_protocol (TLSv1.2 default), no
 * compression, no renegotiation, server cipher preference, forward-secret
 * AEAD ciphers only for TLS 1.2.
 * Client: TLS 1.2+, peer verification required, trust store = CA_FILE or
 * the system default; the hostname is checked by conn_start_tls_client().
 *
 * Both return a new SSL_CTX the caller frees with SSL_CTX_free(), or NULL
 * with a reason in err.
 */
#ifndef MK_TLS_H
#define MK_TLS_H
#include <stddef.h>

#include <openssl/ssl.h>

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *min_protocol,
			char *err, size_t errlen);
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen);
#endif
