// A decode step as one CUDA graph (launch.cuh says how launches are
// recorded). At the step's first sync point the recorded launches run: when
// their key equals the key the instantiated graph was captured from, the
// graph is replayed; otherwise they are captured on the stream into a new
// graph, which updates the instantiated one in place when its topology
// allows (cudaGraphExecUpdate) or replaces it, and that is launched.
#include "kernels/cuda/cuda_backend.h"

bool sol_cuda_recording(const cuda_ctx *c) { return c->graph.recording != 0; }

sol_cuda_key &sol_cuda_step_key(cuda_ctx *c) { return c->graph.key; }

void sol_cuda_enqueue(cuda_ctx *c, std::function<cudaError_t(cudaStream_t)> fn)
{
    if (c->failed)
        return;
    if (c->graph.recording)
        c->graph.work.push_back({std::move(fn), c->op, c->layer});
    else
        sol_cuda_note(c, fn(c->stream), "launch");
}

namespace {

// The recorded launches captured into a graph, instantiated (or updated)
// as c->graph.exec. Capture always ends, even after a failed launch.
void capture(cuda_ctx *c)
{
    sol_cuda_graph &g = c->graph;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        c->op = "graph capture";
        c->layer = -1;
        sol_cuda_note(c, e, "cudaStreamBeginCapture");
        return;
    }
    const char *call = "launch (captured)";
    for (const sol_cuda_work &w : g.work) {
        c->op = w.op;
        c->layer = w.layer;
        if ((e = w.run(c->stream)) != cudaSuccess)
            break;
    }
    cudaGraph_t graph = nullptr;
    cudaError_t end = cudaStreamEndCapture(c->stream, &graph);
    if (e == cudaSuccess && end != cudaSuccess) {
        c->op = "graph capture";
        c->layer = -1;
        e = end;
        call = "cudaStreamEndCapture";
    }
    if (e == cudaSuccess && g.exec) {
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(g.exec, graph, &info) != cudaSuccess) {
            cudaGetLastError(); // a refused update is not an error: instantiate instead
            cudaGraphExecDestroy(g.exec);
            g.exec = nullptr;
        }
    }
    if (e == cudaSuccess && !g.exec) {
        c->op = "graph instantiate";
        c->layer = -1;
        e = cudaGraphInstantiate(&g.exec, graph, 0);
        call = "cudaGraphInstantiate";
    }
    if (graph)
        cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        sol_cuda_graph_free(c);
        sol_cuda_note(c, e, call);
        return;
    }
    g.graph_key.swap(g.key);
    g.captures++;
}

} // namespace

int sol_cuda_flush(cuda_ctx *c)
{
    sol_cuda_graph &g = c->graph;
    if (!g.recording)
        return c->failed;
    g.recording = 0;
    if (!c->failed && !g.work.empty()) {
        if (g.exec && g.key == g.graph_key)
            g.replays++;
        else
            capture(c);
        if (!c->failed) {
            c->op = "decode step graph (--no-graph runs it op by op)";
            c->layer = -1;
            SOL_CUDA_NOTE(c, cudaGraphLaunch(g.exec, c->stream));
        }
    }
    g.work.clear();
    g.key.clear();
    return c->failed;
}

void sol_cuda_graph_free(cuda_ctx *c)
{
    if (c->graph.exec)
        cudaGraphExecDestroy(c->graph.exec);
    c->graph.exec = nullptr;
}
