# deeppacket build. `make` builds build/deeppacket, the static and shared
# libraries (`make MPI=1`: build-mpi/deeppacket with MPI); `make check` runs
# the tests; `make asan` the same tests under ASan+UBSan; `make tsan` the
# threaded ones under ThreadSanitizer; `make fuzz` a short
# libFuzzer run of the packet parser; `make install PREFIX=/usr/local
# DESTDIR=` installs the program, the library (header, .so, .a, pkg-config
# file), the man pages and the Python package; `make uninstall` removes them.
# BUILD=dir keeps builds apart.

CC      ?= cc
# MPI=1: data-parallel training over MPI (src/train/dp_dist.c; Debian
# libopenmpi-dev, openmpi-bin): compiled with mpicc, into build-mpi/ unless
# BUILD says otherwise. The default build has no MPI.
MPI     ?= 0
ifeq ($(MPI),1)
BUILD   ?= build-mpi
MPICC   ?= mpicc
CC      := $(MPICC)
endif
BUILD   ?= build
OPT     ?= -O2 -march=x86-64-v2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -pthread -Iinclude -Isrc -MMD -MP
DEPS    := libpcap cairo openblas
CFLAGS  += $(shell pkg-config --cflags $(DEPS))
ifeq ($(MPI),1)
CFLAGS  += -DDP_WITH_MPI
endif
# The libraries without a pkg-config file (deeppacket.pc's Libs.private).
# XGBoost (Debian libxgboost-dev) for the GBT flow model (src/model/dp_gbt.c)
PLAIN_LIBS := -lm -lpthread -lxgboost
# oneDNN (Debian libdnnl-dev) for inference's per-thread GEMMs
# (src/nn/dp_nn_gemm.c); DNNL=0 builds without it (OpenBLAS only).
DNNL    ?= 1
ifeq ($(DNNL),1)
CFLAGS  += -DDP_WITH_DNNL
PLAIN_LIBS += -ldnnl -lgomp
endif
LDLIBS  += $(shell pkg-config --libs $(DEPS)) $(PLAIN_LIBS)

LIB_C   := $(sort $(wildcard src/*/*.c))
LIB_C   := $(filter-out src/cli/%,$(LIB_C))
LIB_S   := $(sort $(wildcard src/*/*.S))
CLI_C   := $(sort $(wildcard src/cli/*.c))
TEST_C  := $(sort $(wildcard tests/test_*.c))
TEST_H  := tests/harness_util.c

LIB_O   := $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_S:%.S=$(BUILD)/%.o)
CLI_O   := $(CLI_C:%.c=$(BUILD)/%.o)
TEST_BIN:= $(TEST_C:tests/%.c=$(BUILD)/tests/%)
TEST_UO := $(TEST_H:%.c=$(BUILD)/%.o)

# The shared library: version from the header, soname libdeeppacket.so.MAJOR,
# its own -fPIC object set under $(BUILD)/pic (the .a and the program keep
# theirs), only the deeppacket_* API exported (-fvisibility=hidden and the
# version script). SHARED=0 leaves it out (the ASan build: no test uses it).
VERSION := $(shell sed -n 's/^\#define DEEPPACKET_VERSION_STRING "\(.*\)"/\1/p' include/deeppacket.h)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))
SO_NAME := libdeeppacket.so.$(MAJOR)
SO_REAL := libdeeppacket.so.$(VERSION)
PIC_O   := $(LIB_C:%.c=$(BUILD)/pic/%.o) $(LIB_S:%.S=$(BUILD)/pic/%.o)
SHARED  ?= 1
SO_ALL  := $(if $(filter 1,$(SHARED)),$(BUILD)/$(SO_REAL) $(BUILD)/$(SO_NAME) $(BUILD)/libdeeppacket.so)

.PHONY: all check asan tsan fuzz clean print-ldlibs print-pythondir install uninstall tools
all: $(BUILD)/deeppacket $(TEST_BIN) $(BUILD)/tests/failmalloc.so $(BUILD)/udp_flood $(BUILD)/onnx_io $(SO_ALL)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libdeeppacket.a: $(LIB_O)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/pic/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/$(SO_REAL): $(PIC_O) src/libdeeppacket.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(SO_NAME) -Wl,--version-script=src/libdeeppacket.map \
	  -Wl,--no-undefined -o $@ $(PIC_O) $(LDLIBS)

$(BUILD)/$(SO_NAME): $(BUILD)/$(SO_REAL)
	ln -sf $(SO_REAL) $@

# the link name goes through the soname, which it needs to exist
$(BUILD)/libdeeppacket.so: $(BUILD)/$(SO_NAME)
	ln -sf $(SO_NAME) $@

$(BUILD)/deeppacket: $(CLI_O) $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UO) $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The allocation-failure shim of tests/test_exhaust.c (LD_PRELOAD; a test
# tool, linked into nothing). Built without the sanitizers: ASan refuses a
# preloaded malloc, and the test skips in that build.
$(BUILD)/tests/failmalloc.so: tests/failmalloc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g -Wall -Wextra -shared -fPIC -o $@ $< -ldl

# Runs every test binary; tests/run.sh prints the closing "N passed, N failed".
check: all
	BUILD=$(BUILD) tests/run.sh

asan:
	LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0" $(MAKE) BUILD=build-asan SHARED=0 OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" check

# ThreadSanitizer over the threaded tests (scripts/test.sh runs it; build-tsan/):
# test_capture breaks a capture from another thread, test_api opens handles
# while another thread predicts and runs handles of two precisions at once,
# test_nn runs the NN's thread pool, test_preprocess its workers (and runs
# build-tsan/deeppacket preprocess on a terminal, failing while its workers
# still read and warn: the progress line's end). Races inside OpenBLAS and
# oneDNN, not instrumented, are left out
# (tests/tsan.supp); any other report fails the run (ThreadSanitizer's exit
# status 66).
TSAN_TESTS := test_capture test_api test_nn test_preprocess
tsan:
	$(MAKE) BUILD=build-tsan SHARED=0 OPT="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	  build-tsan/deeppacket $(TSAN_TESTS:%=build-tsan/tests/%)
	set -e; for t in $(TSAN_TESTS); do \
	  TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp" BUILD=build-tsan build-tsan/tests/$$t; done

# On-demand benchmark of the NN layers (bench/README-nn.md); not part of `all`.
$(BUILD)/bench_nn: bench/bench_nn.c $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# On-demand benchmark of CNN inference, float32 against bf16 (docs/benchmarks.md).
$(BUILD)/bench_infer: bench/bench_infer.c $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The flow NN against PyTorch on real flows, and the flow time split's numbers
# (docs/accuracy.md; on demand).
$(BUILD)/flow_nn_check $(BUILD)/flow_time_split: $(BUILD)/%: bench/%.c $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every on-demand C program (benchmarks and experiment tools): not run in CI,
# but built there (scripts/test.sh), so that none of them rots.
TOOLS = $(addprefix $(BUILD)/,bench_nn bench_infer trace_train dump_flows flow_nn_check flow_time_split)
tools: $(TOOLS)

# Paced UDP traffic to 127.0.0.1 for the live-capture loss test and benchmark.
$(BUILD)/udp_flood: bench/udp_flood.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# The deeppacket side of the ONNX end-to-end test (tests/onnx/run.sh).
$(BUILD)/onnx_io: $(BUILD)/tests/onnx/onnx_io.o $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Per-step training trace on fixed batches (tools/trace_train.py is the PyTorch side).
$(BUILD)/trace_train: tools/trace_train.c $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# Eight targets share FUZZ_SECONDS: the .npy header parser, the model loader,
# the label-table parser, the capture file reader, the field masks, the
# dataset's own text files (summary.json, shard.tsv) and the gbt booster
# check (its UBJSON reader) a ninth each, the packet parser the rest.
# Undefined behaviour stops a target as a crash does (UBSan would otherwise
# print its report and go on, and the run pass).
FUZZ_SECONDS ?= 60
FUZZ_SHARE   = $(shell echo $$(( $(FUZZ_SECONDS) / 9 > 0 ? $(FUZZ_SECONDS) / 9 : 1 )))
FUZZ_PACKET  = $(shell echo $$(( $(FUZZ_SECONDS) - 7 * $(FUZZ_SHARE) > 0 ? $(FUZZ_SECONDS) - 7 * $(FUZZ_SHARE) : 1 )))
FUZZ_CC      = clang -std=c11 -D_GNU_SOURCE -O1 -g -Isrc -Iinclude -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_TARGETS = npy model labels capture mask dataset ubj
fuzz: $(BUILD)/fuzz_packet $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)
	mkdir -p $(BUILD)/fuzz-corpus $(FUZZ_TARGETS:%=$(BUILD)/fuzz-corpus-%)
	$(BUILD)/fuzz_packet -max_total_time=$(FUZZ_PACKET) -max_len=4096 $(BUILD)/fuzz-corpus fuzz/seeds
	for t in $(FUZZ_TARGETS); do \
	  $(BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SHARE) -max_len=16384 $(BUILD)/fuzz-corpus-$$t fuzz/seeds-$$t || exit 1; \
	done

$(BUILD)/fuzz_packet: fuzz/fuzz_packet.c src/packet/dp_packet.c src/packet/dp_linktype.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

$(BUILD)/fuzz_npy: fuzz/fuzz_npy.c src/dataset/dp_npy_read.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

$(BUILD)/fuzz_labels: fuzz/fuzz_labels.c src/dataset/dp_labels.c src/dataset/iscx_labels.S src/util/dp_task.c src/util/dp_util.c src/util/dp_afile.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

$(BUILD)/fuzz_capture: fuzz/fuzz_capture.c src/capture/dp_capture.c src/capture/dp_ngfix.c src/packet/dp_packet.c src/packet/dp_linktype.c src/util/dp_util.c src/util/dp_afile.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lpcap -lm

$(BUILD)/fuzz_model: fuzz/fuzz_model.c $(sort $(wildcard src/model/*.c src/nn/*.c)) src/flow/dp_flowfeat.c src/packet/dp_mask.c \
                  src/packet/dp_packet.c src/packet/dp_linktype.c src/util/dp_task.c src/util/dp_util.c src/util/dp_afile.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $^ $(LDLIBS)

# The booster check alone, and XGBoost (uninstrumented) on what it accepts.
$(BUILD)/fuzz_ubj: fuzz/fuzz_ubj.c src/model/dp_ubj.c src/model/dp_gbt_check.c src/model/dp_gbt.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lxgboost -lm

$(BUILD)/fuzz_mask: fuzz/fuzz_mask.c src/packet/dp_mask.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

$(BUILD)/fuzz_dataset: fuzz/fuzz_dataset.c src/dataset/dp_pp_summary.c src/dataset/dp_pp_shard.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

# The libraries a program linking $(BUILD)/libdeeppacket.a needs (embedders, bench scripts).
print-ldlibs:
	@echo $(LDLIBS)

# ---- install ---------------------------------------------------------------
# Debian's python3 reads /usr/lib/python3/dist-packages for PREFIX=/usr and
# $(PREFIX)/lib/python3.X/dist-packages for /usr/local; the package gets an
# _install.py naming the installed library.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR     ?= $(PREFIX)/lib
MANDIR     ?= $(PREFIX)/share/man
PYTHON     ?= /usr/bin/python3
PY_XY       = $(shell $(PYTHON) -c 'import sys; print("python%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR  ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/$(or $(PY_XY),python3)/dist-packages)
MAN1       := $(wildcard man/*.1)
PY_FILES   := $(wildcard python/deeppacket/*.py)

install: $(BUILD)/deeppacket $(BUILD)/libdeeppacket.a $(BUILD)/$(SO_REAL) deeppacket.pc.in
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PYTHONDIR)/deeppacket
	install -m 755 $(BUILD)/deeppacket $(DESTDIR)$(BINDIR)/deeppacket
	install -m 644 include/deeppacket.h $(DESTDIR)$(INCLUDEDIR)/deeppacket.h
	install -m 755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_REAL)
	ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(LIBDIR)/libdeeppacket.so
	install -m 644 $(BUILD)/libdeeppacket.a $(DESTDIR)$(LIBDIR)/libdeeppacket.a
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	  -e 's|@VERSION@|$(VERSION)|g' -e 's|@REQUIRES_PRIVATE@|$(DEPS)|g' -e 's|@LIBS_PRIVATE@|$(PLAIN_LIBS)|g' \
	  deeppacket.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/deeppacket.pc
	$(if $(MAN1),install -d $(DESTDIR)$(MANDIR)/man1 && install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	install -m 644 $(PY_FILES) $(DESTDIR)$(PYTHONDIR)/deeppacket/
	printf '# written by make install\nLIBRARY = "%s"\n' "$(LIBDIR)/$(SO_NAME)" > $(DESTDIR)$(PYTHONDIR)/deeppacket/_install.py
	$(if $(DESTDIR),,-ldconfig 2>/dev/null)

# Where `make install` puts the Python package for this PREFIX.
print-pythondir:
	@echo $(PYTHONDIR)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/deeppacket $(DESTDIR)$(INCLUDEDIR)/deeppacket.h
	rm -f $(DESTDIR)$(LIBDIR)/$(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_NAME) $(DESTDIR)$(LIBDIR)/libdeeppacket.so
	rm -f $(DESTDIR)$(LIBDIR)/libdeeppacket.a $(DESTDIR)$(LIBDIR)/pkgconfig/deeppacket.pc
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1)))
	rm -rf $(DESTDIR)$(PYTHONDIR)/deeppacket
	$(if $(DESTDIR),,-ldconfig 2>/dev/null)

clean:
	rm -rf build build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Flow feature rows as .npy for experiments (tools/dump_flows.c).
$(BUILD)/dump_flows: tools/dump_flows.c $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)
