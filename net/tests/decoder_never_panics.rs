//! The frame, header, record and batch decoders never panic, whatever the bytes: they answer a frame, "need
//! more", or an error. Valid frames split at any point decode the same.

use apogee_net::{batch, body, frame, record, RemotingCommand};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn any_command() -> impl Strategy<Value = RemotingCommand> {
    (
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
        proptest::collection::hash_map("[a-z]{1,8}", ".{0,16}", 0..6),
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::option::of(".{0,20}"),
    )
        .prop_map(|(code, opaque, json, ext, body, remark)| {
            let mut c = RemotingCommand::request(code as i32, opaque).with_body(body);
            c.ext_fields = ext.into_iter().collect();
            // The binary header writes "no remark" as length 0, so an empty remark reads back as none.
            c.remark = remark.filter(|r| !r.is_empty());
            if json {
                c.serialize_type = apogee_net::header::SerializeType::Json;
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        for _ in 0..8 {
            match frame::decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let shared = Bytes::from(bytes.clone());
        let _ = record::decode_all(&shared);
        let _ = record::probe(&bytes, true);
        let _ = batch::decode(&shared);
        let _ = body::from_json::<body::route::TopicRouteData>(&bytes);
        let _ = body::from_json::<body::heartbeat::HeartbeatData>(&bytes);
    }

    #[test]
    fn frames_with_valid_prefix_and_random_header_never_panic(kind in 0u8..3, header in proptest::collection::vec(any::<u8>(), 0..256), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut buf = BytesMut::new();
        let len = 4 + header.len() + tail.len();
        buf.extend_from_slice(&(len as i32).to_be_bytes());
        buf.extend_from_slice(&(((kind as u32) << 24) | header.len() as u32).to_be_bytes());
        buf.extend_from_slice(&header);
        buf.extend_from_slice(&tail);
        let _ = frame::decode(&mut buf);
    }

    #[test]
    fn valid_frames_decode_the_same_under_any_split(cmd in any_command(), cut in 0usize..400) {
        let mut whole = BytesMut::new();
        frame::encode(&cmd, &mut whole).unwrap();
        let cut = cut.min(whole.len());
        let mut buf = BytesMut::from(&whole[..cut]);
        let early = frame::decode(&mut buf).unwrap();
        if cut < whole.len() {
            prop_assert!(early.is_none());
            buf.extend_from_slice(&whole[cut..]);
        }
        let got = match early { Some(c) => c, None => frame::decode(&mut buf).unwrap().unwrap() };
        prop_assert_eq!(got, cmd);
    }
}
