/*
 * Minimal TAP unit-test harness shared by tests/unit/test_*.c.
 *
 *   static void test_x(void) { T_OK(1 + 1 == 2); T_STREQ(a, "b"); }
 *   int main(void) { T_RUN(test_x); return t_done(); }
 *
 * Each T_RUN prints one "ok N - name" or "not ok N - name" line; failed
 * checks print "# file:line: ..." diagnostics before it.  t_done() prints
 * the plan and returns the exit status (1 if anything failed).
 */
#ifndef MK_T_H
#define MK_T_H
#include <stdio.h>
#include <string.h>

static int t_num, t_failed_tests, t_cur_failed;

#define T_OK(cond) do { if (!(cond)) { t_cur_failed++; \
	printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define T_EQ(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
	if (t_a_ != t_b_) { t_cur_failed++; printf("# %s:%d: %s == %lld, expected %s == %lld\n", \
	__FILE__, __LINE__, #a, t_a_, #b, t_b_); } } while (0)
#define T_STREQ(a, b) do { const char *t_a_ = (a), *t_b_ = (b); \
	if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0) { t_cur_failed++; \
	printf("# %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
	t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); } } while (0)
#define T_RUN(fn) do { t_cur_failed = 0; fn(); t_num++; \
	if (t_cur_failed) t_failed_tests++; \
	printf("%sok %d - %s\n", t_cur_failed ? "not " : "", t_num, #fn); fflush(stdout); } while (0)

static inline int t_done(void)
{
	printf("1..%d\n", t_num);
	return t_failed_tests ? 1 : 0;
}
#endif
