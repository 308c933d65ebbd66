/*
 * Large arrays (one entry per message of a folder) without a page fault
 * per 4 KiB.  A session that SELECTs a 100,000-message folder fills a few
 * arrays of 2-3 MB each, fresh, in a process that has just started.  On
 * virtual machines a page fault costs several microseconds, and the faults
 * cost more than filling the arrays: measured on the test machine, 8 MB
 * touched page by page took 28 ms; in transparent huge pages, 0.6 ms.
 *
 * An array of BIGMEM_MIN bytes or more is its own mapping, 2 MB aligned
 * and rounded up to 2 MB, advised MADV_HUGEPAGE before anything touches
 * it; a smaller one is malloc'd.  The advice is a hint: with THP off, or
 * no free huge page, the kernel uses small pages as before.  Rounding up
 * costs at most one partly used huge page per array, only for folders of
 * tens of thousands of messages.
 *
 * Memory from these functions is freed with bigmem_free(), never free().
 */
#ifndef MK_BIGMEM_H
#define MK_BIGMEM_H
#include <stddef.h>

#define BIGMEM_MIN ((size_t)1 << 20)

/* N zeroed elements of SIZE bytes; NULL on overflow or ENOMEM. */
void *bigmem_calloc(size_t n, size_t size);
/* Resizes to BYTES (what is added is not zeroed); NULL (P kept) on ENOMEM. */
void *bigmem_realloc(void *p, size_t bytes);
/* NULL is allowed. */
void bigmem_free(void *p);
#endif
