//! Request codes, response codes and client languages: the one table of wire numbers.

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $value:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { $($(#[$vm])* $variant = $value),* }
        impl $name {
            /// The code for a wire number, if it is one we know.
            pub fn from_i32(value: i32) -> Option<Self> {
                match value { $($value => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

code_enum! {
    /// Request codes (RocketMQ's `RequestCode`).
    RequestCode {
        SendMessage = 10, PullMessage = 11, QueryMessage = 12, QueryConsumerOffset = 14,
        UpdateConsumerOffset = 15, UpdateAndCreateTopic = 17, GetAllTopicConfig = 21,
        SearchOffsetByTimestamp = 29, GetMaxOffset = 30, GetMinOffset = 31, GetEarliestMsgStoreTime = 32,
        ViewMessageById = 33, HeartBeat = 34, UnregisterClient = 35, ConsumerSendMsgBack = 36,
        EndTransaction = 37, GetConsumerListByGroup = 38, CheckTransactionState = 39,
        NotifyConsumerIdsChanged = 40, LockBatchMq = 41, UnlockBatchMq = 42, GetAllConsumerOffset = 43,
        GetAllDelayOffset = 45, CheckClientConfig = 46, RegisterBroker = 103, UnregisterBroker = 104, GetRouteInfoByTopic = 105,
        GetBrokerClusterInfo = 106, UpdateAndCreateSubscriptionGroup = 200,
        GetAllSubscriptionGroupConfig = 201, GetAllTopicListFromNameserver = 206, DeleteSubscriptionGroup = 207, ResetConsumerClientOffset = 220,
        InvokeBrokerToResetOffset = 222, GetConsumerRunningInfo = 307, SendMessageV2 = 310,
        SendBatchMessage = 320, SendReplyMessage = 324, SendReplyMessageV2 = 325,
        PushReplyMessageToClient = 326, LitePullMessage = 361,
        // Operations (issue 12): stats, connections, topic deletion, broker config, name server KV config,
        // draining a broker.
        UpdateBrokerConfig = 25, GetBrokerConfig = 26, GetBrokerRuntimeInfo = 28, PutKvConfig = 100,
        GetKvConfig = 101, DeleteKvConfig = 102, GetTopicStatsInfo = 202, GetConsumerConnectionList = 203,
        GetProducerConnectionList = 204, WipeWritePermOfBroker = 205, GetConsumeStats = 208,
        DeleteTopicInBroker = 215, DeleteTopicInNamesrv = 216, GetKvlistByNamespace = 219,
        GetTopicsByCluster = 224, QueryTopicConsumeByWho = 300, ViewBrokerStatsData = 315,
        AddWritePermOfBroker = 327,
    }
}

code_enum! {
    /// Response codes (RocketMQ's `ResponseCode`).
    ResponseCode {
        Success = 0, SystemError = 1, SystemBusy = 2, RequestCodeNotSupported = 3, TransactionFailed = 4,
        FlushDiskTimeout = 10, SlaveNotAvailable = 11, FlushSlaveTimeout = 12, MessageIllegal = 13,
        ServiceNotAvailable = 14, VersionNotSupported = 15, NoPermission = 16, TopicNotExist = 17,
        TopicExistAlready = 18, PullNotFound = 19, PullRetryImmediately = 20, PullOffsetMoved = 21,
        QueryNotFound = 22, SubscriptionParseFailed = 23, SubscriptionNotExist = 24,
        SubscriptionNotLatest = 25, SubscriptionGroupNotExist = 26, FilterDataNotExist = 27,
        FilterDataNotLatest = 28, InvalidParameter = 29,
        TransactionShouldCommit = 200, TransactionShouldRollback = 201, TransactionStateUnknow = 202,
        ConsumerNotOnline = 206,
    }
}

code_enum! {
    /// Client languages as numbered in the binary header; JSON headers carry the name.
    Language {
        Java = 0, Cpp = 1, Dotnet = 2, Python = 3, Delphi = 4, Erlang = 5, Ruby = 6, Other = 7, Http = 8,
        Go = 9, Php = 10, Oms = 11, Rust = 12,
    }
}

impl Language {
    /// The name a JSON header uses (`"JAVA"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Java => "JAVA",
            Self::Cpp => "CPP",
            Self::Dotnet => "DOTNET",
            Self::Python => "PYTHON",
            Self::Delphi => "DELPHI",
            Self::Erlang => "ERLANG",
            Self::Ruby => "RUBY",
            Self::Other => "OTHER",
            Self::Http => "HTTP",
            Self::Go => "GO",
            Self::Php => "PHP",
            Self::Oms => "OMS",
            Self::Rust => "RUST",
        }
    }

    /// The language for a JSON header's name; unknown names are `OTHER`, as a lenient peer would do.
    pub fn from_name(name: &str) -> Self {
        (0..=12)
            .filter_map(Self::from_i32)
            .find(|l| l.name() == name)
            .unwrap_or(Self::Other)
    }
}

/// Protocol version Apogee announces (RocketMQ 4.9.4's `V4_9_4`).
pub const VERSION: i32 = 453;
