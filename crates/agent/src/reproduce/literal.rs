//! Reading a frame's local variables back as literals.
//!
//! SDKs send `vars` as JSON, but not as the values the program held:
//! sentry-sdk (Python) sends strings, bytes and objects as their `repr`
//! (`"'abc'"`, `"b'\\x00'"`, `"<Session object at 0x…>"`), numbers, booleans
//! and `None` as JSON, lists and dicts as JSON containers of the same. A
//! value is a [`Literal`] only when it can be rebuilt exactly; anything else
//! (an object's repr, a value the SDK truncated or filtered) is refused with
//! the reason, and the frame is not replayed from it.

/// A value a replay test can rebuild from the event alone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    /// `None` / `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer, as its decimal digits (Python integers are unbounded).
    Int(String),
    /// A float (finite).
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string (Python `bytes`).
    Bytes(Vec<u8>),
    /// A list / array.
    List(Vec<Literal>),
    /// A Python tuple.
    Tuple(Vec<Literal>),
    /// A mapping, in the event's order.
    Dict(Vec<(Literal, Literal)>),
}

/// Why a value is not a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotLiteral {
    /// An object's repr (`<Foo at 0x…>`) or anything else that does not
    /// read back as a literal.
    Object,
    /// The SDK cut it short (a long string, a container past its item cap).
    Truncated,
    /// The SDK or a scrubber replaced it (`[Filtered]`).
    Filtered,
    /// Deeper or larger than a replay test should carry.
    TooLarge,
}
