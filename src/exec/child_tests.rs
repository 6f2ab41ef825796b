//! Tests of child processes: how a child's end is worded from its exit status and last lines.

use super::*;
use std::os::unix::process::ExitStatusExt;

#[test]
fn a_killed_child_is_worded_alike_for_cells_and_programs() {
    // Raw wait statuses: a signal number alone is death by that signal; code << 8 an exit.
    let killed = std::process::ExitStatus::from_raw(9);
    let failed = std::process::ExitStatus::from_raw(101 << 8);
    let oom = "SIGKILL: killed, often for running out of memory";
    assert_eq!(exit_reason(killed, None), oom);
    assert_eq!(
        exit_reason(killed, Some("error: out of memory".into())),
        format!("{oom}: out of memory")
    );
    assert_eq!(status_words(killed), format!("ended by {oom}"));
    assert_eq!(
        exit_reason(failed, Some("error: no such model".into())),
        "no such model"
    );
    assert_eq!(status_words(failed), "exited 101");
    assert_eq!(
        exit_reason(failed, Some("error: ".into())),
        "the cell process exited with exit status: 101"
    );
}

#[test]
fn an_abort_is_told_by_llama_cpps_message_not_the_backtrace_after_it() {
    let mut words = LastWords::default();
    for line in [
        "loading the model",
        "/root/.cargo/registry/src/x/llama.cpp/src/llama-model.cpp:1330: \
         GGML_ASSERT(hparams.n_layer_all > 0) failed",
        "#0  0x00007f in __GI___wait4 (pid=1) at ../sysdeps/unix/sysv/linux/wait4.c:30",
        "30 ../sysdeps/unix/sysv/linux/wait4.c: No such file or directory.",
        "[Inferior 1 (process 1) detached]",
    ] {
        words.push(line.to_string());
    }
    let aborted = std::process::ExitStatus::from_raw(6);
    assert_eq!(
        exit_reason(aborted, words.why(aborted)),
        "SIGABRT: llama.cpp aborted: llama-model.cpp:1330: \
         GGML_ASSERT(hparams.n_layer_all > 0) failed"
    );
    // A child that exits on its own says why last; without an abort message, so does one
    // a signal ended.
    let failed = std::process::ExitStatus::from_raw(1 << 8);
    let words = |lines: &[&str]| {
        let mut w = LastWords::default();
        lines.iter().for_each(|l| w.push(l.to_string()));
        w
    };
    let noted = ["ggml.c:12: a note", "error: no such model"];
    assert_eq!(words(&noted).why(failed).as_deref(), Some(noted[1]));
    let noise = [
        "error: out of memory",
        "30 ../wait4.c: No such file or directory.",
    ];
    assert_eq!(words(&noise).why(aborted).as_deref(), Some(noise[1]));
}
