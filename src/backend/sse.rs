//! Server-sent events (the WHATWG `text/event-stream` format), line by line: `event:` and
//! `data:` fields (several `data:` lines join with newlines), comments starting with `:`,
//! and a blank line that dispatches the event. An event's data is capped at
//! [`MAX_EVENT_BYTES`]: what arrives past it is dropped and the event marked `oversized`.

/// The most data one event may carry.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `message` when none was given.
    pub event: String,
    pub data: String,
    /// Data past [`MAX_EVENT_BYTES`] was dropped.
    pub oversized: bool,
}

/// Accumulates lines into events.
#[derive(Debug, Default)]
pub struct Parser {
    event: Option<String>,
    data: Option<String>,
    oversized: bool,
}

impl Parser {
    /// Feeds one line (without its line ending); returns an event when the line ends one.
    pub fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                let sep = usize::from(self.data.is_some());
                let d = self.data.get_or_insert_with(String::new);
                if d.len() + sep + value.len() > MAX_EVENT_BYTES {
                    self.oversized = true;
                } else {
                    if sep == 1 {
                        d.push('\n');
                    }
                    d.push_str(value);
                }
            }
            _ => {}
        }
        None
    }

    /// The event built so far, if any: at a blank line, and when the stream ends (a last
    /// event without its blank line).
    pub fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        let oversized = std::mem::take(&mut self.oversized);
        let data = self.data.take()?;
        Some(Event {
            event: event.unwrap_or_else(|| "message".into()),
            data,
            oversized,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Event> {
        let mut p = Parser::default();
        let mut out: Vec<Event> = text.split('\n').filter_map(|l| p.line(l)).collect();
        out.extend(p.dispatch());
        out
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let ev = events(
            ": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\ndata:x\ndata: y\n\ndata: [DONE]",
        );
        assert_eq!(
            ev,
            vec![
                Event {
                    event: "message_start".into(),
                    data: "{\"a\":1}".into(),
                    oversized: false,
                },
                Event {
                    event: "message".into(),
                    data: "x\ny".into(),
                    oversized: false,
                },
                Event {
                    event: "message".into(),
                    data: "[DONE]".into(),
                    oversized: false,
                },
            ]
        );
    }

    #[test]
    fn an_event_field_alone_dispatches_nothing() {
        assert!(events("event: ping\n\n").is_empty());
    }

    #[test]
    fn an_endless_event_is_capped_not_grown() {
        let mut p = Parser::default();
        let line = format!("data: {}", "x".repeat(1 << 20));
        for _ in 0..10 {
            assert!(p.line(&line).is_none());
        }
        let ev = p.line("").expect("the event ends");
        assert!(ev.oversized);
        assert!(ev.data.len() <= MAX_EVENT_BYTES);
        let ev = p.line("data: y").and(None).or_else(|| p.line("")).unwrap();
        assert!(!ev.oversized, "the next event starts afresh");
        assert_eq!(ev.data, "y");
    }
}
