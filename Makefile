# mailkeep — see README.md.  make | make check | make check-asan | make install
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec/mailkeep
MANDIR   = $(PREFIX)/share/man
UNITDIR  = $(PREFIX)/lib/systemd/system

CC      ?= cc
BUILD   ?= build
PKGS     = libxml-2.0 libcurl openssl
CFLAGS  ?= -O2 -g
WARN     = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE
XCFLAGS  = $(WARN) -Ilib $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
	   -DMAILKEEP_LIBEXECDIR='"$(LIBEXECDIR)"'
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lldap -llber -lcrypt -lz

TOOLS    = $(patsubst cmd/%.c,%,$(wildcard cmd/*.c))
LIBSRC   = $(wildcard lib/*.c)
LIBOBJ   = $(patsubst lib/%.c,$(BUILD)/lib/%.o,$(LIBSRC))
UNITSRC  = $(wildcard tests/unit/test_*.c)
UNITBIN  = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNITSRC))
BINS     = $(addprefix $(BUILD)/bin/,$(TOOLS))
# mail-serve-imap execs it after login; libc and zlib only (no -l of LDLIBS),
# static unless sanitizing: a long-lived session then maps ~1 MB less
LIBEXEC  = $(BUILD)/libexec/mailkeep/mail-imap-session
SESSION_STATIC = $(if $(findstring sanitize,$(CFLAGS) $(LDFLAGS)),,-static)

.PHONY: all check check-asan install demo bench fuzz clean deps
all: $(BINS) $(LIBEXEC) $(UNITBIN)

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libmailkeep.a: $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: cmd/%.c $(BUILD)/libmailkeep.a $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libmailkeep.a $(LDLIBS) $(LDFLAGS)

$(LIBEXEC): cmd/libexec/mail-imap-session.c $(BUILD)/libmailkeep.a $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libmailkeep.a -lz $(LDFLAGS) $(SESSION_STATIC)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h $(BUILD)/libmailkeep.a $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(BUILD)/libmailkeep.a $(LDLIBS) $(LDFLAGS)

deps:
	@scripts/deps

# The test command of the README.  Runs C unit tests and bats tests and ends
# with "N passed, N failed, N skipped".  TESTS=pattern limits the bats files.
check: deps all
	@BUILD=$(BUILD) scripts/run-tests

check-asan:
	@$(MAKE) --no-print-directory check BUILD=build-asan \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined"

demo: deps all
	@BUILD=$(BUILD) scripts/demo

bench: deps all
	@BUILD=$(BUILD) scripts/bench/run

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(UNITDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 755 $(LIBEXEC) $(DESTDIR)$(LIBEXECDIR)/
	for m in man/*.1; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/; done; true
	for m in man/*.5; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man5/; done; true
	for m in man/*.7; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man7/; done; true
	for u in scripts/systemd/*.service scripts/systemd/*.socket scripts/systemd/*.timer; do \
		[ -e "$$u" ] || continue; \
		sed 's|@BINDIR@|$(BINDIR)|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); done

clean:
	rm -rf build build-asan

# Fuzzing: every tests/fuzz/fuzz_*.c is a libFuzzer target linked against the
# library built with clang and ASan+UBSan; each runs FUZZ_SECONDS on a copy of
# its seed corpus tests/fuzz/corpus/<name>/ (crashes land in build-fuzz/).
FUZZ_SECONDS ?= 20
FUZZSRC  = $(wildcard tests/fuzz/fuzz_*.c)
FUZZBIN  = $(patsubst tests/fuzz/%.c,build-fuzz/fuzz/%,$(FUZZSRC))
FUZZFLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined

build-fuzz/fuzz/%: tests/fuzz/%.c build-fuzz/libmailkeep.a
	@mkdir -p $(dir $@)
	clang $(XCFLAGS) $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libmailkeep.a $(LDLIBS)

build-fuzz/libmailkeep.a: $(LIBSRC) $(wildcard lib/*.h)
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang \
		CFLAGS="$(FUZZFLAGS) -fsanitize=fuzzer-no-link" build-fuzz/libmailkeep.a-real

$(BUILD)/libmailkeep.a-real: $(LIBOBJ)
	@rm -f $(BUILD)/libmailkeep.a
	ar rcs $(BUILD)/libmailkeep.a $^

fuzz: $(FUZZBIN)
	@for f in $(FUZZBIN); do \
		n=$$(basename $$f); c=build-fuzz/corpus/$$n; mkdir -p $$c; \
		for s in tests/fuzz/corpus/$$n tests/fuzz/corpus/$${n#fuzz_}; do \
			[ -d $$s ] && cp -r $$s/. $$c/; done; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		(cd build-fuzz && ../$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			../$$c 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done') || exit 1; \
	done
