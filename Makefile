# deeppacket build. `make` builds build/deeppacket; `make check` runs the
# tests; `make asan` the same tests under ASan+UBSan; `make fuzz` a short
# libFuzzer run of the packet parser. BUILD=dir keeps builds apart.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2 -march=x86-64-v2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -pthread -Iinclude -Isrc -MMD -MP
DEPS    := libpcap cairo openblas
CFLAGS  += $(shell pkg-config --cflags $(DEPS))
LDLIBS  += $(shell pkg-config --libs $(DEPS)) -lm -lpthread
# XGBoost (Debian libxgboost-dev) for the GBT flow model (src/model/dp_gbt.c)
LDLIBS  += -lxgboost
# oneDNN (Debian libdnnl-dev) for inference's per-thread GEMMs
# (src/nn/dp_nn_gemm.c); DNNL=0 builds without it (OpenBLAS only).
DNNL    ?= 1
ifeq ($(DNNL),1)
CFLAGS  += -DDP_WITH_DNNL
LDLIBS  += -ldnnl -lgomp
endif

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

.PHONY: all check asan fuzz clean print-ldlibs
all: $(BUILD)/deeppacket $(TEST_BIN) $(BUILD)/udp_flood $(BUILD)/onnx_io

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libdeeppacket.a: $(LIB_O)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/deeppacket: $(CLI_O) $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UO) $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Runs every test binary; tests/run.sh prints the closing "N passed, N failed".
check: all
	BUILD=$(BUILD) tests/run.sh

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" check

# On-demand benchmark of the NN layers (bench/README-nn.md); not part of `all`.
$(BUILD)/bench_nn: bench/bench_nn.c $(BUILD)/libdeeppacket.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

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

# Six targets share FUZZ_SECONDS: the .npy header parser, the model loader,
# the label-table parser, the capture file reader and the field masks an
# eighth each, the packet parser the rest.
FUZZ_SECONDS ?= 60
FUZZ_SHARE   = $(shell echo $$(( $(FUZZ_SECONDS) / 8 > 0 ? $(FUZZ_SECONDS) / 8 : 1 )))
FUZZ_PACKET  = $(shell echo $$(( $(FUZZ_SECONDS) - 5 * $(FUZZ_SHARE) > 0 ? $(FUZZ_SECONDS) - 5 * $(FUZZ_SHARE) : 1 )))
FUZZ_CC      = clang -std=c11 -D_GNU_SOURCE -O1 -g -Isrc -Iinclude -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS = npy model labels capture mask
fuzz: $(BUILD)/fuzz_packet $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)
	mkdir -p $(BUILD)/fuzz-corpus $(FUZZ_TARGETS:%=$(BUILD)/fuzz-corpus-%)
	$(BUILD)/fuzz_packet -max_total_time=$(FUZZ_PACKET) -max_len=4096 $(BUILD)/fuzz-corpus fuzz/seeds
	for t in $(FUZZ_TARGETS); do \
	  $(BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SHARE) -max_len=16384 $(BUILD)/fuzz-corpus-$$t fuzz/seeds-$$t || exit 1; \
	done

$(BUILD)/fuzz_packet: fuzz/fuzz_packet.c src/packet/dp_packet.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

$(BUILD)/fuzz_npy: fuzz/fuzz_npy.c src/dataset/dp_npy_read.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

$(BUILD)/fuzz_labels: fuzz/fuzz_labels.c src/dataset/dp_labels.c src/dataset/iscx_labels.S src/util/dp_util.c src/util/dp_afile.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

$(BUILD)/fuzz_capture: fuzz/fuzz_capture.c src/capture/dp_capture.c src/packet/dp_packet.c src/util/dp_util.c src/util/dp_afile.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lpcap -lm

$(BUILD)/fuzz_model: fuzz/fuzz_model.c $(sort $(wildcard src/model/*.c src/nn/*.c)) src/flow/dp_flowfeat.c src/packet/dp_mask.c \
                  src/packet/dp_packet.c src/util/dp_util.c src/util/dp_afile.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz_mask: fuzz/fuzz_mask.c src/packet/dp_mask.c src/util/dp_util.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lm

# The libraries a program linking $(BUILD)/libdeeppacket.a needs (embedders, bench scripts).
print-ldlibs:
	@echo $(LDLIBS)

clean:
	rm -rf build build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
