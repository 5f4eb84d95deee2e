//! Every protocol limit, named once. Error messages quote these.

/// Largest frame accepted or written (RocketMQ's default, 16 MiB). Checked before the frame is buffered.
pub const FRAME_SIZE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// How far ahead of the bytes that arrived a partial frame's buffer is grown at most. A read chunk's worth:
/// small frames decode without a second allocation, and a large claim is paid for as it arrives.
pub const FRAME_GROWTH_STEP_BYTES: usize = 64 * 1024;

const _: () = assert!(FRAME_GROWTH_STEP_BYTES < FRAME_SIZE_MAX_BYTES);

/// Largest header inside a frame. A header is metadata; anything near the frame size is malformed.
pub const HEADER_SIZE_MAX_BYTES: usize = 1024 * 1024;

/// Default largest message body a broker accepts (`maxMessageSize`, 4 MiB).
pub const MESSAGE_SIZE_MAX_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// Properties are stored with an i16 length, so they can never exceed this.
pub const PROPERTIES_SIZE_MAX_BYTES: usize = i16::MAX as usize;

/// Topic names are at most this many characters (RocketMQ's `TOPIC_MAX_LENGTH`).
pub const TOPIC_NAME_MAX_CHARS: usize = 127;

/// Entries allowed in one `extFields` map; a frame claiming more is malformed.
pub const EXT_FIELDS_MAX: usize = 4096;

/// Longest `extFields` key: the binary header stores a key's length as an i16. A JSON header with a longer
/// key is malformed (it could not be answered in the binary encoding, nor is it any RocketMQ field).
pub const EXT_KEY_SIZE_MAX_BYTES: usize = i16::MAX as usize;

const _: () = assert!(MESSAGE_SIZE_MAX_BYTES_DEFAULT < FRAME_SIZE_MAX_BYTES);
const _: () = assert!(HEADER_SIZE_MAX_BYTES < FRAME_SIZE_MAX_BYTES);

/// Longest SQL92 selector accepted. It bounds the parsed tree, whose evaluation recurses once per
/// AND/OR in a chain.
pub const SELECTOR_SIZE_MAX_BYTES: usize = 8 * 1024;

/// Deepest nesting of parentheses and unary operators in a selector: the parser recurses once per level,
/// and so do evaluation and dropping the tree.
pub const SELECTOR_NESTING_MAX: usize = 16;

/// Longest chain of `=`, `<>` and `IS [NOT] NULL` on one level (`a = b = c`): each link is a level of
/// the tree. RocketMQ sets no limit; chains past two are meaningless, and this bounds the tree's depth
/// (with [`SELECTOR_NESTING_MAX`]; AND and OR chains are flat and add no depth).
pub const SELECTOR_EQUALITY_CHAIN_MAX: usize = 8;

/// Header fields an ACL-signed request may carry at most (RocketMQ's requests carry about twenty). The
/// broker sorts them on the stack to check the signature without allocating; a request with more is
/// refused rather than checked on the heap.
pub const SIGNED_FIELDS_MAX: usize = 64;

const _: () = assert!(SIGNED_FIELDS_MAX <= EXT_FIELDS_MAX);
