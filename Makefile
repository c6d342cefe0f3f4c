# softcot build.  make | make CUDA=1 | make test | make asan | make bench | make fuzz
#
# Every src/**/*.c except main.c goes into build/libsoftcot.a; the binary and every
# tests/test_*.c link against it. New modules and tests are picked up automatically.

CUDA ?= 0
# The CUDA build lives in its own directory: its library holds kernels/ instead of the
# "no CUDA" stub, and the two must never mix in one archive.
ifeq ($(CUDA),1)
BUILD ?= build-cuda
endif
BUILD ?= build
CC ?= gcc
ifeq ($(CC),cc)
CC = gcc
endif

PKGS := openblas libcjson libpcre2-8 libutf8proc inih hdf5-openmpi ompi-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))

OPT ?= -O3 -march=x86-64-v3
CFLAGS_BASE = -std=c17 -D_GNU_SOURCE -fno-trapping-math -Wall -Wextra -Werror -g $(OPT) -Isrc $(PKG_CFLAGS) -MMD -MP
CFLAGS += $(CFLAGS_BASE)
LDLIBS += $(PKG_LIBS) -lm -lpthread

ALL_SRC := $(shell find src -name '*.c' | sort)
CUDA_ABSENT_SRC := src/ops/ops_cuda_absent.c
LIB_SRC := $(filter-out src/main.c,$(ALL_SRC))
CU_SRC :=
ifeq ($(CUDA),1)
  NVCC ?= /usr/local/cuda/bin/nvcc
  LIB_SRC := $(filter-out $(CUDA_ABSENT_SRC),$(LIB_SRC))
  CU_SRC := $(sort $(wildcard kernels/*.cu))
  NVCCFLAGS ?= -O3 -std=c++20 -Isrc -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 --compiler-options -Wall,-Wextra,-Werror
  # header dependencies, as for the C sources: a changed ops_backend.h rebuilds every kernel
  NVCCFLAGS += -MMD -MP
  LDLIBS += -L/usr/local/cuda/lib64 -lcudart -lcublas -lcublasLt -lnccl -lstdc++
endif

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_SRC:%.cu=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# MPI test programs (tests/mpi_*.c) are launched by shell tests through mpirun.
MPI_TEST_SRC := $(sort $(wildcard tests/mpi_*.c))
MPI_TEST_BIN := $(MPI_TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# GPU checks (tests/gpu_*.c): built by `make CUDA=1 gpu-checks`, run by `make check-gpu`.
GPU_CHECK_SRC := $(sort $(wildcard tests/gpu_*.c))
GPU_CHECK_BIN := $(GPU_CHECK_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard tests/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all test tests asan bench fuzz clean run
all: $(BUILD)/softcot softcot

softcot: $(BUILD)/softcot
	ln -sf $(BUILD)/softcot softcot

$(BUILD)/libsoftcot.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/softcot: $(BUILD)/src/main.o $(BUILD)/libsoftcot.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/kernels/%.o: kernels/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libsoftcot.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libsoftcot.a $(LDLIBS)

tests: $(TEST_BIN) $(MPI_TEST_BIN) $(BUILD)/softcot

# The test command the README and CI use.
# Open MPI refuses to run as root (CI runs as root) unless told twice.
MPI_ENV = OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

test: tests
	$(MPI_ENV) SOFTCOT=$(abspath $(BUILD))/softcot tests/run.sh $(BUILD)

# Only the Slurm end-to-end test against a local one-node cluster (docs/slurm.md); needs
# slurm-wlm and munge. `make test` runs it too when sbatch is installed.
.PHONY: test-slurm
test-slurm: $(BUILD)/softcot
	@$(MPI_ENV) SOFTCOT=$(abspath $(BUILD))/softcot BUILD=$(BUILD) sh tests/test_slurm.sh | tee $(BUILD)/test-slurm.log
	@p=$$(grep -c '^ok - ' $(BUILD)/test-slurm.log); f=$$(grep -c '^not ok - ' $(BUILD)/test-slurm.log); \
	echo "$$p passed, $$f failed"; [ $$f -eq 0 ] && [ $$p -gt 0 ]

# ASan + UBSan build of everything, in its own build dir, then the whole suite.
# Open MPI keeps allocations alive until exit and unloads its plugins, so LeakSanitizer
# needs slow unwinding and a suppression list limited to MPI/HDF5 frames (tests/lsan.supp).
asan:
	ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	OMPI_MCA_mca_base_component_disable_dlclose=1 $(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" test

bench: $(BENCH_BIN) $(MPI_TEST_BIN) $(BUILD)/softcot
	@for b in $(BENCH_BIN); do $$b || exit 1; done
	BUILD=$(BUILD) sh tests/bench_dist.sh

# The CUDA build with the GPU check programs (CI builds this; it has nvcc but no GPU).
.PHONY: gpu-checks check-gpu
gpu-checks: $(BUILD)/softcot $(GPU_CHECK_BIN)

# On a machine with a GPU: builds the CUDA binary and runs the correctness checks and the
# throughput table (tools/check_gpu.sh; docs/gpu.md).
check-gpu:
	$(MAKE) CUDA=1 BUILD=build-cuda gpu-checks
	tools/check_gpu.sh build-cuda

# Main job on the built-in default (replaced by `softcot train` once RL lands).
run: all
	./tools/run_default.sh

# PNG figures of runs (tools/plot.py, docs/analysis.md): make plots RUN="outputs/a outputs/b" [PLOTS=DIR]
RUN ?= outputs/default
.PHONY: plots
# make plots STUDY=outputs/study: the study's figures (pass@k with seed bands, entropy by CoT
# position, OOD NLL) and report, from its evaluation files (tools/study_report.py).
plots:
ifdef STUDY
	/usr/bin/python3 tools/study_report.py $(STUDY)
else
	/usr/bin/python3 tools/plot.py $(if $(PLOTS),--out $(PLOTS)) $(RUN)
endif

# The study (docs/results.md): hard vs soft vs fuzzy RL under one recipe, 3 seeds, six
# inference modes, OOD NLL; writes outputs/study/ (report.md, results.json, img/).
# STUDY_QUICK=1: one seed, 100 steps, 100 problems (outputs/study-quick/), a smoke test.
.PHONY: study
study: all
	$(MAKE) -f tools/study.mk -j$(or $(STUDY_JOBS),2) SOFTCOT=$(BUILD)/softcot

# Rebuilds the built-in base model inputs/models/base from scratch (docs/base-model.md).
.PHONY: base-model
base-model: all
	./tools/make_base_model.sh

fuzz:
	$(MAKE) -C tests/fuzz BUILD=$(abspath build-fuzz)

clean:
	rm -rf build build-asan build-fuzz softcot

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
