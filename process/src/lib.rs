//! Process pool executor for concur (`ProcessPoolExecutor`); not built yet, see issue 5.
