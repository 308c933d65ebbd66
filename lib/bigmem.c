/*
 * Large arrays in transparent huge pages; see bigmem.h.
 */
#include "bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE ((size_t)2 << 20)

/* In front of every block: its usable size and, for a mapping, its length. */
struct head {
	size_t size;
	size_t mapped;		/* 0: malloc'd */
};
#define HEAD_LEN ((sizeof(struct head) + 15) & ~(size_t)15)

static struct head *head_of(void *p)
{
	return (struct head *)(void *)((char *)p - HEAD_LEN);
}

/* A fresh, zeroed, 2 MB aligned mapping of at least LEN bytes advised for THP. */
static void *map_huge(size_t len, size_t *mapped)
{
	size_t want = (len + HUGE - 1) & ~(HUGE - 1);
	char *raw, *p;
	size_t lead;

	if (want < len || want + HUGE < want)
		return NULL;
	raw = mmap(NULL, want + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	lead = (size_t)(p - raw);
	if (lead > 0)
		munmap(raw, lead);
	if (HUGE - lead > 0)
		munmap(p + want, HUGE - lead);
	(void)madvise(p, want, MADV_HUGEPAGE);
	*mapped = want;
	return p;
}

static void *alloc(size_t bytes, int zero)
{
	struct head *h;
	size_t mapped = 0;

	if (bytes > SIZE_MAX - HEAD_LEN - HUGE)
		return NULL;
	if (bytes >= BIGMEM_MIN)
		h = map_huge(HEAD_LEN + bytes, &mapped);
	else
		h = zero ? calloc(1, HEAD_LEN + bytes) : malloc(HEAD_LEN + bytes);
	if (h == NULL)
		return NULL;
	h->size = bytes;
	h->mapped = mapped;
	return (char *)h + HEAD_LEN;
}

void *bigmem_calloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return alloc(n * size, 1);
}

void *bigmem_realloc(void *p, size_t bytes)
{
	struct head *h;
	void *q;

	if (p == NULL)
		return alloc(bytes, 0);
	h = head_of(p);
	if (h->mapped != 0 ? HEAD_LEN + bytes <= h->mapped : bytes < BIGMEM_MIN) {
		if (h->mapped == 0) {
			h = realloc(h, HEAD_LEN + bytes);
			if (h == NULL)
				return NULL;
		}
		h->size = bytes;
		return (char *)h + HEAD_LEN;
	}
	/* across the threshold or past the mapping: a new block, copied */
	q = alloc(bytes, 0);
	if (q == NULL)
		return NULL;
	memcpy(q, p, h->size < bytes ? h->size : bytes);
	bigmem_free(p);
	return q;
}

void bigmem_free(void *p)
{
	struct head *h;

	if (p == NULL)
		return;
	h = head_of(p);
	if (h->mapped != 0)
		munmap(h, h->mapped);
	else
		free(h);
}
