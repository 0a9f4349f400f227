//! Thread pool executor for concur (`ThreadPoolExecutor`); not built yet, see issue 4.
