/* Large arrays: contents kept across growth, 2 MB aligned mappings advised for THP. */
#include "bigmem.h"
#include "t.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB ((size_t)1 << 20)

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void test_small_and_zeroed(void)
{
	unsigned char *p = bigmem_calloc(1000, 10);

	T_OK(p != NULL);
	T_OK(p != NULL && all_zero(p, 10000));
	bigmem_free(p);
	bigmem_free(NULL);
	T_OK(bigmem_calloc(SIZE_MAX / 2, 4) == NULL);	/* overflow */
}

static void test_big_zeroed_and_aligned(void)
{
	size_t n = 3 * MB;
	unsigned char *p = bigmem_calloc(n, 1);

	T_OK(p != NULL);
	if (p == NULL)
		return;
	T_OK(all_zero(p, n));
	/* the block's header sits at the start of a 2 MB aligned mapping */
	T_EQ(((uintptr_t)p & (2 * MB - 1)) < 64, 1);
	memset(p, 0xab, n);
	bigmem_free(p);
}

/* Grows a table one entry at a time across the threshold, as the callers do. */
static void test_growth_keeps_contents(void)
{
	uint32_t *v = NULL;
	size_t cap = 0, n = 1200000, i;
	int ok = 1;

	for (i = 0; i < n; i++) {
		if (i == cap) {
			uint32_t *nv;
			cap = cap ? cap * 2 : 64;
			nv = bigmem_realloc(v, cap * sizeof(*v));
			T_OK(nv != NULL);
			if (nv == NULL) {
				bigmem_free(v);
				return;
			}
			v = nv;
		}
		v[i] = (uint32_t)(i * 2654435761u);
	}
	for (i = 0; i < n; i++)
		if (v[i] != (uint32_t)(i * 2654435761u))
			ok = 0;
	T_OK(ok);
	/* shrinking keeps the prefix */
	v = bigmem_realloc(v, 1000 * sizeof(*v));
	T_OK(v != NULL && v[999] == (uint32_t)(999 * 2654435761u));
	bigmem_free(v);
}

/* With THP not "never", the kernel records the advice on the mapping ("hg"). */
static void test_advised(void)
{
	char line[512], mode[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	unsigned char *p;
	unsigned long lo = 0, hi = 0;
	int in = 0, flagged = -1;

	if (f == NULL || fgets(mode, sizeof(mode), f) == NULL || strstr(mode, "[never]")) {
		if (f != NULL)
			fclose(f);
		printf("# THP unavailable here: advice not checked\n");
		return;
	}
	fclose(f);
	p = bigmem_calloc(4 * MB, 1);
	T_OK(p != NULL);
	f = fopen("/proc/self/smaps", "r");
	T_OK(f != NULL);
	if (p == NULL || f == NULL) {
		if (f != NULL)
			fclose(f);
		bigmem_free(p);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			flagged = strstr(line, " hg") != NULL;
	}
	fclose(f);
	T_EQ(flagged, 1);
	bigmem_free(p);
}

int main(void)
{
	T_RUN(test_small_and_zeroed);
	T_RUN(test_big_zeroed_and_aligned);
	T_RUN(test_growth_keeps_contents);
	T_RUN(test_advised);
	return t_done();
}
