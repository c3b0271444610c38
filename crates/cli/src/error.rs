//! Errors with a failure class, so `main` can choose the exit code.

use racklet_link::{Classify, FailureClass};

/// An error that carries its failure class and its fix. It wraps a typed
/// library error (kept whole: its message and its source chain are the
/// library's own) or, for the CLI's own checks, a message.
#[derive(Debug)]
pub struct Classified {
    pub class: FailureClass,
    /// The fix, printed apart from the message.
    pub hint: Option<String>,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Message(String),
    Error(Box<dyn std::error::Error + Send + Sync>),
}

impl std::fmt::Display for Classified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Message(m) => f.write_str(m),
            Inner::Error(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Classified {
    // Transparent: the wrapped error's own cause comes next in the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner {
            Inner::Message(_) => None,
            Inner::Error(e) => e.source(),
        }
    }
}

/// Makes an error of a given class.
pub fn fail(class: FailureClass, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Classified { class, hint: None, inner: Inner::Message(message.into()) })
}

/// Wraps a classified library error, keeping it whole.
pub fn classify<E: Classify + std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow::Error::new(Classified { class: e.class(), hint: e.hint(), inner: Inner::Error(Box::new(e)) })
}

/// `e` with `more` added to its hint (the CLI knows things a library does
/// not, such as how to put the board in its boot ROM mode).
pub fn add_hint(e: anyhow::Error, more: &str) -> anyhow::Error {
    let class = class_of(&e);
    let hint = match hint_of(&e) {
        Some(h) => format!("{h}. {more}"),
        None => more.to_string(),
    };
    anyhow::Error::new(Classified { class, hint: Some(hint), inner: Inner::Error(e.into()) })
}

/// The fix for an error chain: the first hint in it.
pub fn hint_of(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|cause| {
        if let Some(c) = cause.downcast_ref::<Classified>() {
            return c.hint.clone();
        }
        cause.downcast_ref::<racklet_link::LinkError>().and_then(Classify::hint)
    })
}

/// Bad input (exit 2) with its fix.
pub fn bad_input_with_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Classified {
        class: FailureClass::BadInput,
        hint: Some(hint.into()),
        inner: Inner::Message(message.into()),
    })
}

/// Bad input (exit 2).
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    fail(FailureClass::BadInput, message)
}

/// The class of an error chain: the first classified error in it, bad input
/// for image and board-file errors, `Other` otherwise.
pub fn class_of(e: &anyhow::Error) -> FailureClass {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<Classified>() {
            return c.class;
        }
        if let Some(l) = cause.downcast_ref::<racklet_link::LinkError>() {
            return l.class();
        }
        if let Some(racklet_image::ImageError::Interrupted { .. }) = cause.downcast_ref() {
            return FailureClass::Interrupted;
        }
        if let Some(o) = cause.downcast_ref::<racklet_image::output::OutputError>() {
            return if o.is_refusal() { FailureClass::BadInput } else { FailureClass::Io };
        }
        if cause.downcast_ref::<racklet_image::ImageError>().is_some()
            || cause.downcast_ref::<crate::boards::BoardFileError>().is_some()
            || cause.downcast_ref::<racklet_link::select::SelectorError>().is_some()
        {
            return FailureClass::BadInput;
        }
    }
    FailureClass::Other
}

/// The message of an error chain, each cause after a colon — except causes
/// a message already quotes (a library error that shows its source in its
/// own text), so nothing is said twice.
pub fn message_of(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("writing the stage: {source}")]
    struct Quotes {
        #[source]
        source: std::io::Error,
    }

    impl Classify for Quotes {
        fn class(&self) -> FailureClass {
            FailureClass::Io
        }
        fn hint(&self) -> Option<String> {
            Some("check the cable".into())
        }
    }

    #[test]
    fn a_typed_error_keeps_its_class_hint_and_chain_and_is_said_once() {
        let e = classify(Quotes { source: std::io::Error::other("broken pipe") });
        assert_eq!(class_of(&e), FailureClass::Io);
        assert_eq!(hint_of(&e).as_deref(), Some("check the cable"));
        assert_eq!(e.chain().count(), 2, "the source stays in the chain");
        assert_eq!(message_of(&e), "writing the stage: broken pipe");
        let e = e.context("stage 2");
        assert_eq!(message_of(&e), "stage 2: writing the stage: broken pipe");
        assert_eq!(class_of(&e), FailureClass::Io);
    }
}
