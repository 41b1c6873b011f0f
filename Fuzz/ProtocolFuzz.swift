// libFuzzer's entry point over netd's request path: every line of the input is read as netd reads
// a request line (JSON parsed strictly, the request checked against JSON-RPC 2.0, the method looked
// up, its params decoded and validated), and every answer netd would give is encoded. Compiled
// together with Sources/Protocol by scripts/fuzz; a crash, a hang or a sanitizer report fails it.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestLines(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var start = 0
    var index = 0
    while index <= size {
        if index == size || bytes[index] == 0x0A {
            serve(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            start = index + 1
        }
        index += 1
    }
    return 0
}

/// What netd does with one line before a handler runs: decode it, and encode the answer to every
/// call it refuses (a call it accepts goes to its handler, which is not part of this target).
private func serve(_ line: UnsafeRawBufferPointer) {
    let calls: [IncomingCall]
    switch IncomingFrame.decode(line) {
    case .single(let call): calls = [call]
    case .batch(let batch): calls = batch
    }
    for call in calls {
        guard case .respond(let id) = call.reply, case .failure(let error) = call.content else { continue }
        _ = try? ResponseMessage(id: id, outcome: .error(error)).line()
    }
}
