//! Errors with a failure class, so `main` can choose the exit code.

use racklet_link::{Classify, FailureClass};

/// An error that carries its failure class.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Classified {
    pub class: FailureClass,
    pub message: String,
    /// The fix, printed apart from the message.
    pub hint: Option<String>,
}

/// Makes an error of a given class.
pub fn fail(class: FailureClass, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Classified { class, message: message.into(), hint: None })
}

/// A typed library error kept whole in the chain: its class and hint are
/// read once, its message and its sources stay its own.
#[derive(Debug)]
pub struct Typed {
    pub class: FailureClass,
    pub hint: Option<String>,
    error: Box<dyn std::error::Error + Send + Sync>,
}

impl Typed {
    pub fn new<E: Classify + std::error::Error + Send + Sync + 'static>(e: E) -> Typed {
        Typed { class: e.class(), hint: e.hint(), error: Box::new(e) }
    }
}

impl std::fmt::Display for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Typed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Wraps a classified library error without flattening it.
pub fn typed<E: Classify + std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow::Error::new(Typed::new(e))
}

/// Wraps any classified library error.
pub fn classify<E: Classify + std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::Error::new(Classified { class: e.class(), message: e.to_string(), hint: e.hint() })
}

/// The fix for an error chain: the first hint in it.
pub fn hint_of(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|cause| {
        if let Some(c) = cause.downcast_ref::<Classified>() {
            return c.hint.clone();
        }
        if let Some(t) = cause.downcast_ref::<Typed>() {
            return t.hint.clone();
        }
        cause.downcast_ref::<racklet_link::LinkError>().and_then(Classify::hint)
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
        if let Some(t) = cause.downcast_ref::<Typed>() {
            return t.class;
        }
        if let Some(l) = cause.downcast_ref::<racklet_link::LinkError>() {
            return l.class();
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
