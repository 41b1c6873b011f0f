import NIOCore
import NetdFraming
import Testing

/// The line framer: splits, limits, and recovers after an over-long line.
@Suite struct FramingTests {
    private func frames(_ chunks: [String], limit: Int = 16) -> [LineFrame] {
        var decoder = LineFrameDecoder(maximumLineBytes: limit)
        var buffer = ByteBuffer()
        var out: [LineFrame] = []
        for chunk in chunks {
            buffer.writeString(chunk)
            while let frame = decoder.next(&buffer) { out.append(frame) }
            buffer.discardReadBytes()
        }
        return out
    }

    private func line(_ text: String) -> LineFrame { .line(ByteBuffer(string: text)) }

    @Test func splitsLinesAcrossChunks() {
        #expect(frames(["{\"a\"", ":1}\n{\"b\":2}\n{\"c"]) == [line("{\"a\":1}"), line("{\"b\":2}")])
    }

    @Test func dropsCarriageReturnAndSkipsBlankLines() {
        #expect(frames(["one\r\n\n  \n\r\ntwo\n"]) == [line("one"), line("two")])
    }

    @Test func oversizedLineInOneChunkThenRecovers() {
        let long = String(repeating: "x", count: 40)
        #expect(frames([long + "\nok\n"]) == [.oversized(bytes: 40), line("ok")])
    }

    @Test func oversizedLineAcrossChunksIsCountedAndSkipped() {
        let chunk = String(repeating: "y", count: 10)
        let result = frames([chunk, chunk, chunk, "y\nnext\n"])
        #expect(result == [.oversized(bytes: 31), line("next")])
    }

    @Test func lineOfExactlyTheLimitPasses() {
        let exact = String(repeating: "z", count: 16)
        #expect(frames([exact + "\n"]) == [line(exact)])
        #expect(frames([exact + "z\n"]) == [.oversized(bytes: 17)])
    }

    @Test func memoryStaysBoundedWhileSkipping() {
        var decoder = LineFrameDecoder(maximumLineBytes: 16)
        var buffer = ByteBuffer()
        for _ in 0..<1000 {
            buffer.writeString(String(repeating: "q", count: 100))
            #expect(decoder.next(&buffer) == nil)
            buffer.discardReadBytes()
            #expect(buffer.readableBytes == 0)
        }
        buffer.writeString("\n")
        #expect(decoder.next(&buffer) == .oversized(bytes: 100_000))
    }
}
