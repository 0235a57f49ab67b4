/* A live session: the decode thread hands over each step's frame data and
 * text under a short lock and goes on; the UI thread (the caller of
 * sol_live_run) owns the terminal, polls keys and redraws at most every
 * 100 ms, building frames from its own copy. Decoding never waits on
 * drawing; it only stops between tokens when the user pauses or quits. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tui/tui.h"
#include "util/clock.h"

enum { REDRAW_MS = 100, IDLE_POLL_MS = 100, UI_NICE = 10 };

struct sol_live {
    pthread_mutex_t lock;
    pthread_cond_t resume;
    /* shared, under lock */
    sol_frame_feed feed;
    char *text;
    size_t text_len, text_cap;
    int generated;
    uint64_t version; /* bumped by every change the view shows */
    int paused, stop, finished, failed;
    /* the UI thread's own */
    sol_frame_info info;
    sol_tui *tui;
    sol_frame_feed ui_feed;
    char *ui_text;
    size_t ui_len, ui_cap;
    sol_frame frame;
};

int sol_live_open(const sol_frame_info *info, const sol_tui_options *opts, sol_live **out, sol_err *err)
{
    sol_live *l = calloc(1, sizeof *l);
    if (!l)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->resume, NULL);
    sol_frame_feed_init(&l->feed);
    l->info = *info;
    /* the view's text is the prompt, then what the decode thread hands over */
    size_t prompt = sol_text_complete(info->prompt, strlen(info->prompt));
    l->ui_cap = prompt + 4096;
    l->ui_text = malloc(l->ui_cap);
    if (!l->ui_text) {
        sol_live_close(l);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    memcpy(l->ui_text, info->prompt, prompt);
    l->ui_len = l->frame.prompt_len = prompt;
    int rc = sol_tui_open(opts, &l->tui, err);
    if (rc) {
        sol_live_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

void sol_live_close(sol_live *l)
{
    if (!l)
        return;
    sol_tui_close(l->tui);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->resume);
    free(l->text);
    free(l->ui_text);
    free(l);
}

/* ---- decode thread ---------------------------------------------------------- */

void sol_live_push_step(sol_live *l, const sol_frame_step *step)
{
    pthread_mutex_lock(&l->lock);
    sol_frame_feed_push(&l->feed, step);
    l->version++;
    pthread_mutex_unlock(&l->lock);
}

void sol_live_push_text(sol_live *l, const char *bytes, size_t n, int generated)
{
    pthread_mutex_lock(&l->lock);
    if (l->text_len + n > l->text_cap) {
        size_t cap = (l->text_cap ? l->text_cap * 2 : 4096) + n;
        char *text = realloc(l->text, cap);
        if (text) {
            l->text = text;
            l->text_cap = cap;
        }
    }
    if (l->text_len + n <= l->text_cap) {
        memcpy(l->text + l->text_len, bytes, n);
        l->text_len += n;
    }
    l->generated = generated;
    l->version++;
    pthread_mutex_unlock(&l->lock);
}

int sol_live_gate(sol_live *l)
{
    pthread_mutex_lock(&l->lock);
    while (l->paused && !l->stop)
        pthread_cond_wait(&l->resume, &l->lock);
    int stop = l->stop;
    pthread_mutex_unlock(&l->lock);
    return stop;
}

void sol_live_finish(sol_live *l, int failed)
{
    pthread_mutex_lock(&l->lock);
    l->finished = 1;
    l->failed = failed;
    l->version++;
    pthread_mutex_unlock(&l->lock);
}

/* ---- UI thread ---------------------------------------------------------------- */


/* Copies what changed since the last frame (the text only grows). */
static void take_snapshot(sol_live *l)
{
    pthread_mutex_lock(&l->lock);
    l->ui_feed = l->feed;
    size_t prompt = l->frame.prompt_len, have = l->ui_len - prompt;
    if (prompt + l->text_len > l->ui_cap) {
        size_t cap = prompt + l->text_cap;
        char *text = realloc(l->ui_text, cap);
        if (text) {
            l->ui_text = text;
            l->ui_cap = cap;
        }
    }
    size_t want = prompt + l->text_len <= l->ui_cap ? l->text_len : l->ui_cap - prompt;
    if (want > have)
        memcpy(l->ui_text + prompt + have, l->text + have, want - have);
    l->ui_len = prompt + want;
    l->frame.generated = l->generated;
    l->frame.phase = l->failed     ? SOL_PHASE_FAILED
                     : l->finished ? SOL_PHASE_DONE
                     : l->stop     ? SOL_PHASE_STOPPING
                     : l->paused   ? SOL_PHASE_PAUSED
                     : l->feed.decode_steps > 0 ? SOL_PHASE_DECODE
                                                : SOL_PHASE_PREFILL;
    pthread_mutex_unlock(&l->lock);
}

static void request(sol_live *l, int stop, int toggle_pause)
{
    pthread_mutex_lock(&l->lock);
    if (stop)
        l->stop = 1;
    if (toggle_pause && !l->finished)
        l->paused = !l->paused;
    if (l->stop)
        l->paused = 0;
    l->version++;
    pthread_cond_broadcast(&l->resume);
    pthread_mutex_unlock(&l->lock);
}

/* The UI thread gives way to the decode threads: on a machine with as many
 * cores as decode threads every redraw would otherwise preempt one of them
 * and stall the pool's barrier. Linux nice values are per thread, and the
 * decode and pool threads already exist, so only this one is lowered. */
static void yield_to_decode(void)
{
    pid_t self = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, (id_t)self);
    if (errno == 0 && nice_now < UI_NICE)
        (void)setpriority(PRIO_PROCESS, (id_t)self, UI_NICE);
}

int sol_live_run(sol_live *l, volatile sig_atomic_t *interrupted)
{
    sol_frame *f = &l->frame;
    yield_to_decode();
    double last_draw = -1;
    uint64_t drawn_version = (uint64_t)-1;
    int dirty = 1, quit = 0;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        uint64_t version = l->version;
        int finished = l->finished, failed = l->failed;
        pthread_mutex_unlock(&l->lock);
        if (failed || (finished && quit))
            break;
        if (version != drawn_version)
            dirty = 1;
        double now = sol_now_s(), due = last_draw + REDRAW_MS / 1e3;
        if (dirty && now >= due) {
            take_snapshot(l);
            sol_frame_build(&l->ui_feed, &l->info, f);
            f->text = l->ui_text;
            f->text_len = l->ui_len;
            sol_tui_draw(l->tui, f);
            last_draw = now;
            drawn_version = version;
            dirty = 0;
        }
        int wait_ms = dirty ? (int)((due - now) * 1e3) + 1 : IDLE_POLL_MS;
        int key = sol_tui_key(l->tui, wait_ms < 0 ? 0 : wait_ms);
        if (interrupted && *interrupted)
            key = 'q';
        if (key < 0)
            continue;
        dirty = 1;
        if (f->help && key != 'q' && key != 'Q') {
            f->help = 0; /* any other key closes the help */
            continue;
        }
        switch (key) {
        case 'q':
        case 'Q':
            quit = 1;
            if (!finished)
                request(l, 1, 0);
            break;
        case 'p':
        case 'P':
        case ' ': request(l, 0, 1); break;
        case 's':
        case 'S':
            f->sort = (sol_sort)((f->sort + 1) % SOL_SORT_COUNT);
            break;
        case 'r':
        case 'R': f->view = f->view == SOL_VIEW_TABLE ? SOL_VIEW_ROOFLINE : SOL_VIEW_TABLE; break;
        case 'h':
        case 'H':
        case '?': f->help = 1; break;
        default: break; /* KEY_RESIZE and the rest: redraw */
        }
    }
    pthread_mutex_lock(&l->lock);
    int stopped = quit && !l->failed && l->stop;
    pthread_mutex_unlock(&l->lock);
    return stopped;
}
