// runner's shim over the part of llama.cpp that has no C API: the memory breakdown of a
// context (llama_get_memory_breakdown in llama.cpp's src/llama-ext.h, a C++ function returning
// a std::map). It sums the model, context (KV cache) and compute buffer bytes over every
// buffer type and hands them to Rust as plain integers.
//
// The declarations below repeat those of the llama.cpp that Cargo.toml pins exactly (see
// vendor/LLAMA_CPP.md); a version bump of llama-cpp-sys-2 must re-check them.

#include <cstddef>
#include <cstdint>
#include <map>

struct llama_context;
struct ggml_backend_buffer_type;
typedef struct ggml_backend_buffer_type * ggml_backend_buffer_type_t;

struct llama_memory_breakdown_data {
    size_t model   = 0;
    size_t context = 0;
    size_t compute = 0;

    size_t total() const { return model + context + compute; }
};

using llama_memory_breakdown = std::map<ggml_backend_buffer_type_t, llama_memory_breakdown_data>;

llama_memory_breakdown llama_get_memory_breakdown(const struct llama_context * ctx);

extern "C" {

struct runner_memory_totals {
    uint64_t model;
    uint64_t context;
    uint64_t compute;
    uint32_t n_buffer_types;
};
// The Rust side (src/engine/memory.rs) asserts the same size.
static_assert(sizeof(runner_memory_totals) == 32, "runner_memory_totals layout changed");

// Fills `out` with the byte totals of `ctx`. Returns 0 on success, -1 for null arguments and
// -2 when llama.cpp threw.
int runner_memory_breakdown(const struct llama_context * ctx, struct runner_memory_totals * out) {
    if (ctx == nullptr || out == nullptr) {
        return -1;
    }
    try {
        const llama_memory_breakdown mb = llama_get_memory_breakdown(ctx);
        runner_memory_totals t = {0, 0, 0, 0};
        for (const auto & entry : mb) {
            t.model   += entry.second.model;
            t.context += entry.second.context;
            t.compute += entry.second.compute;
            t.n_buffer_types += 1;
        }
        *out = t;
        return 0;
    } catch (...) {
        return -2;
    }
}

}  // extern "C"
