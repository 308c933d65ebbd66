/* libFuzzer target: the passwd-file parser over arbitrary bytes. */
#include "passwd.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct passwd_entry e;
	char err[200];
	size_t pos = 0;
	int line = 0, r, n = 0;

	while ((r = passwd_next((const char *)data, size, &pos, &line, &e, err, sizeof(err))) !=
	       PASSWD_END) {
		if (pos > size || ++n > 100000)
			__builtin_trap();
		/* Only clear text: crypt(3) would make every run slow. */
		if (r == PASSWD_ENTRY && e.scheme == PASSWD_SCHEME_PLAIN)
			(void)passwd_verify(&e, "password");
	}
	(void)passwd_find((const char *)data, size, "alice@example.com", &e, &n, err, sizeof(err));
	return 0;
}
