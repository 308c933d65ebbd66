/* libFuzzer target: the mailkeep.conf parser over arbitrary bytes. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char err[512];

	if (config_parse((const char *)data, size, "fuzz.conf", &c, err, sizeof(err)) == 0) {
		char home[512];
		(void)config_user_account(c);
		(void)config_user_home(c, "alice@example.com", home, sizeof(home), err, sizeof(err));
		(void)config_require(c, ~0u, err, sizeof(err));
	}
	config_free(c);
	return 0;
}
