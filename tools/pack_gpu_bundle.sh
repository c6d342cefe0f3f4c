#!/bin/sh
# Packs the CUDA build (softcot and the GPU check programs) with the shared libraries it
# needs from this machine into one relocatable bundle, for GPU nodes whose image lacks the
# Debian packages softcot builds against (OpenBLAS, parallel HDF5, Open MPI, ...). The
# CUDA libraries themselves (cudart, cuBLAS, NCCL) are NOT packed: the node's own are used.
#
#   tools/pack_gpu_bundle.sh BUILD_DIR OUT_DIR
#
# OUT_DIR receives bin/ (the programs), gpu-bundle.tar.xz (libraries, plus the Open MPI
# runtime files so that a single process can start MPI without a launcher) and
# run_gpu_bundle.sh, which unpacks the libraries and runs tools/check_gpu.sh with them.
set -eu
build=${1:?usage: pack_gpu_bundle.sh BUILD_DIR OUT_DIR}
out=${2:?usage: pack_gpu_bundle.sh BUILD_DIR OUT_DIR}
rm -rf "$out"
mkdir -p "$out/bin/tests" "$out/stage/lib"
cp "$build/softcot" "$out/bin/"
for t in "$build"/tests/gpu_*; do
    case "$t" in *.d) ;; *) cp "$t" "$out/bin/tests/" ;; esac
done

ompi_files="/usr/bin/orted /usr/bin/orterun /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 /usr/share/openmpi /etc/openmpi /usr/lib/x86_64-linux-gnu/pmix2"
# Every shared object the programs and the Open MPI plugins load, except the C library
# (the node's newer glibc serves) and CUDA's.
objs="$out/bin/softcot $(ls "$out"/bin/tests/*) $(find /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 /usr/lib/x86_64-linux-gnu/pmix2 -name '*.so' 2>/dev/null)"
for o in $objs; do
    ldd "$o" 2>/dev/null | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*|libcudart*|libcublas*|libnccl*) ;;
        *) cp -L "$lib" "$out/stage/lib/" ;;
    esac
done
tar -cf "$out/stage/ompi.tar" $ompi_files 2>/dev/null || true
tar -C "$out/stage" -cJf "$out/gpu-bundle.tar.xz" lib ompi.tar
rm -rf "$out/stage"

cat >"$out/run_gpu_bundle.sh" <<'EOF'
#!/bin/sh
# Unpacks the bundle's libraries and runs the GPU checks with the bundled programs.
#   sh BUNDLE/run_gpu_bundle.sh [check_gpu.sh arguments]   (from the repository root)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/softcot-bundle
tar -C /tmp/softcot-bundle -xJf "$here/gpu-bundle.tar.xz"
# Open MPI's runtime goes to its compiled-in paths, only where nothing is there yet.
if [ ! -e /usr/bin/orted ]; then tar -C / -xf /tmp/softcot-bundle/ompi.tar 2>/dev/null || true; fi
cuda_dirs=""
for n in libcublas.so.13 libnccl.so.2 libcudart.so.13; do
    f=$(find /usr/local /usr/lib /opt -name "$n" 2>/dev/null | head -1)
    [ -n "$f" ] && cuda_dirs="$cuda_dirs:$(dirname "$f")"
done
export LD_LIBRARY_PATH="/tmp/softcot-bundle/lib$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec sh tools/check_gpu.sh "$here/bin" "$@"
EOF
chmod +x "$out/run_gpu_bundle.sh"
du -sh "$out"/gpu-bundle.tar.xz "$out"/bin
