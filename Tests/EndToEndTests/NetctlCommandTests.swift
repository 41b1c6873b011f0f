import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// netctl's part-two commands (pipe, connect --pipe, forward, join, fault) and what a person sees
/// (colour, completions, exit statuses, error lines), each netctl a separate process against a
/// real netd process and real peers.
@Suite(.timeLimit(.minutes(2)))
struct NetctlCommandTests {
    @Test func pipeCarriesEveryByteValueBothWaysAndEndsCleanly() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let folder = fixture.folder.path
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }

        // Two MiB with every byte value (NUL, newlines, invalid UTF-8) through an echo server.
        let payload = Sockets.pattern(2 << 20, seed: 11)
        try Data(payload).write(to: URL(fileURLWithPath: folder + "/in.bin"))
        let connected = try await fixture.netctl("--json", "connect", "127.0.0.1:\(peer.port)")
        let id = try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8)).id
        let piped = try await shell("netctl --socket \(fixture.socket) pipe \(id) < \(folder)/in.bin > \(folder)/out.bin", folder: folder)
        #expect(piped.status == 0, "\(piped.stderr)")
        let echoed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/out.bin")))
        #expect(Sockets.same(echoed, payload))
        let record = try await fixture.netctlJSON(SocketInfo.self, "get", String(id))
        #expect(record.state == .closed && record.error == nil)
        #expect(record.bytesRead == Int64(payload.count) && record.bytesWritten == Int64(payload.count))

        // connect --pipe: open and join in one step, like `nc HOST PORT`.
        let nc = try await run(try Binaries.path("netctl"), ["--socket", fixture.socket, "connect", "--pipe", "127.0.0.1:\(peer.port)"], stdin: "hello\n", folder: folder)
        #expect(nc.status == 0 && nc.stdout == "hello\n", "\(nc)")

        // A socket that is not yours, or not there: netd's error, exit 1, the terminal untouched.
        let missing = try await fixture.netctl("pipe", "424242")
        #expect(missing.status == 1 && missing.stdout.isEmpty && missing.stderr.contains("-32001"), "\(missing)")
        #expect(try await fixture.netctl("--json", "pipe", String(id)).status == 2)
        #expect(try await fixture.stop().status == 0)
    }

    @Test func pipeExitsOneWhenThePeerResets() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let listener = try Sockets.listenTCP()
        defer { listener.close() }
        let connected = try await fixture.netctl("--json", "connect", "127.0.0.1:\(listener.port)")
        let id = try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8)).id
        let far = try await listener.accept()
        async let piped = shell("printf x | netctl --socket \(fixture.socket) pipe \(id)", folder: fixture.folder.path)
        #expect(try await Sockets.onThread { try Sockets.read(far, count: 1) } == Array("x".utf8))
        Sockets.reset(far)
        let result = try await piped
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("socket \(id): ECONNRESET"), "\(result.stderr)")
        #expect(try await fixture.stop().status == 0)
    }

    @Test func forwardJoinAndFaultsAsPeopleTypeThem() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }

        // forward LISTEN TARGET, the listen side as `:0` (every address, any port).
        let made = try await fixture.netctl("--json", "forward", ":0", "127.0.0.1:\(peer.port)", "--label", "fw")
        #expect(made.status == 0, "\(made.stderr)")
        let forward = try JSONDecoder().decode(ServerInfo.self, from: Data(made.stdout.utf8))
        #expect(forward.forward == ForwardTarget(host: "127.0.0.1", port: peer.port))
        #expect(forward.label == "fw" && forward.local?.address == "::")
        let port = try #require(forward.local?.port)
        let human = try await fixture.netctl("ls")
        #expect(human.stdout.contains("-> 127.0.0.1:\(peer.port)") && human.stdout.contains("forward"), "\(human.stdout)")

        // Faults with their params in the forms people type: durations and sizes.
        let latency = try await fixture.netctl("--json", "fault", "add", String(forward.id), "latency", "ms=1s", "jitterMs=20ms", "--seed", "7")
        #expect(latency.status == 0, "\(latency.stderr)")
        let added = try JSONDecoder().decode(FaultAddMethod.Result.self, from: Data(latency.stdout.utf8)).fault
        #expect(added.ms == 1000 && added.jitterMs == 20 && added.seed == 7 && added.direction == .both)
        let bandwidth = try await fixture.netctl(
            "--json", "fault", "add", String(forward.id), "bandwidth", "bytesPerSecond=64k", "--direction", "downstream", "--probability", "0.5")
        let slow = try JSONDecoder().decode(FaultAddMethod.Result.self, from: Data(bandwidth.stdout.utf8)).fault
        #expect(slow.bytesPerSecond == 65536 && slow.direction == .downstream && slow.probability == 0.5)
        let listed = try await fixture.netctlJSON(FaultListMethod.Result.self, "fault", "ls", String(forward.id))
        #expect(listed.faults.map(\.id) == [added.id, slow.id])
        let table = try await fixture.netctl("fault", "ls")
        #expect(table.stdout.contains("latency") && table.stdout.contains("ms=1000 jitterMs=20"), "\(table.stdout)")
        // A param the type does not take, or a value that is no size: usage, exit 2, nothing added.
        let wrongParam = try await fixture.netctl("fault", "add", String(forward.id), "latency", "bytes=3")
        #expect(wrongParam.status == 2 && wrongParam.stderr.contains("latency has no param bytes"), "\(wrongParam.stderr)")
        #expect(try await fixture.netctl("fault", "add", String(forward.id), "bandwidth", "bytesPerSecond=1q").status == 2)
        let removed = try await fixture.netctl("fault", "rm", String(added.id))
        #expect(removed.status == 0 && removed.stdout.hasPrefix("fault \(added.id) removed"), "\(removed)")
        _ = try await fixture.netctl("fault", "rm", String(slow.id))

        // Through the forward: one connection, seen in ls with its peer and in history.
        let nc = try await run(try Binaries.path("netctl"), ["--socket", fixture.socket, "connect", "--pipe", "localhost:\(port)"], stdin: "through\n", folder: fixture.folder.path)
        #expect(nc.status == 0 && nc.stdout == "through\n", "\(nc)")
        let history = try await fixture.netctl("--json", "history", "--server", String(forward.id))
        let page = try JSONDecoder().decode(HistoryQueryMethod.Result.self, from: Data(history.stdout.utf8))
        #expect(page.items.count == 2, "accepted and client: \(history.stdout)")

        // join ID ID: two sockets to two listeners of the test's, joined by netd.
        let left = try Sockets.listenTCP(), right = try Sockets.listenTCP()
        defer { left.close(); right.close() }
        let a = try await fixture.netctlJSON(SocketInfo.self, "connect", "127.0.0.1:\(left.port)")
        let b = try await fixture.netctlJSON(SocketInfo.self, "connect", "127.0.0.1:\(right.port)")
        let (farA, farB) = (try await left.accept(), try await right.accept())
        defer { close(farA); close(farB) }
        let joined = try await fixture.netctl("join", String(a.id), String(b.id))
        #expect(joined.stdout == "joined socket \(a.id) and socket \(b.id)\n", "\(joined)")
        try Sockets.send(farA, Array("across".utf8))
        #expect(try await Sockets.onThread { try Sockets.read(farB, count: 6) } == Array("across".utf8))
        let refused = try await fixture.netctl("send", String(a.id), "x")
        #expect(refused.status == 1 && refused.stderr.contains("ERR_SOCKET_PIPED"), "\(refused.stderr)")
        #expect(try await fixture.stop().status == 0)
    }

    @Test func durationsSizesAndAddressesInTheFormsPeopleType() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let listening = try await fixture.netctl("--json", "listen", ":0")
        let server = try JSONDecoder().decode(ServerInfo.self, from: Data(listening.stdout.utf8))
        #expect(server.local?.address == "::")
        let v6 = try await fixture.netctl("--json", "listen", "[::1]:0")
        #expect(try JSONDecoder().decode(ServerInfo.self, from: Data(v6.stdout.utf8)).local?.address == "::1")
        #expect(try await fixture.netctl("listen", "::1:80").stderr.contains("in brackets"))

        let socket = try await fixture.netctlJSON(SocketInfo.self, "connect", "127.0.0.1:\(peer.port)", "--timeout", "2s")
        _ = try await fixture.netctl("send", String(socket.id), String(repeating: "z", count: 3000))
        let first = try await fixture.netctl("recv", String(socket.id), "--wait", "2s", "--max-bytes", "1k")
        #expect(first.stdout.utf8.count == 1024, "\(first.stderr)")
        let configured = try await fixture.netctl("--json", "configure", String(socket.id), "--no-delay", "true", "--idle-timeout", "1m")
        #expect(configured.status == 0, "\(configured.stderr)")
        let waited = try await fixture.netctl("accept", String(server.id), "--wait", "150ms")
        #expect(waited.stdout == "no connection waiting on server \(server.id)\n")
        #expect(try await fixture.netctl("recv", String(socket.id), "--wait", "soon").status == 2)
        #expect(try await fixture.netctl("recv", String(socket.id), "--max-bytes", "12q").status == 2)

        let pruned = try await fixture.netctl("--json", "prune", "7d")
        #expect(try JSONDecoder().decode(HistoryPruneMethod.Result.self, from: Data(pruned.stdout.utf8)).deleted == 0)
        let methods = try await fixture.netctl("methods")
        #expect(methods.stdout.contains("socket.attach") && methods.stdout.contains("fault.add"))
        let one = try await fixture.netctl("methods", "socket.pipe")
        #expect(one.stdout.contains("to (required)"), "\(one.stdout)")
        #expect(try await fixture.netctl("methods", "socket.nothing").status == 1)
        #expect(try await fixture.stop().status == 0)
    }

    @Test func theRestOfTheCommandsEndToEnd() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let netctl = try Binaries.path("netctl")
        let listener = try Sockets.listenTCP()
        defer { listener.close() }

        // status, as text and as the result exactly.
        let status = try await fixture.netctl("status")
        #expect(status.stdout.hasPrefix("netd ") && status.stdout.contains("socket    \(fixture.socket)"), "\(status.stdout)")
        let statusJSON = try await fixture.netctlJSON(StatusMethod.Result.self, "status")
        #expect(statusJSON.socket == fixture.socket)

        // watch --json: one line per event, each a JSON object; end: the peer reads the end of stream.
        let watch = try ChildProcess(netctl, ["--socket", fixture.socket, "--json", "watch", "--type", "connect", "--type", "end", "--count", "2"], folder: fixture.folder.path)
        // Subscribed once it shows as a second client beside this one.
        let observer = try await NetdClient.connect(socketPath: fixture.socket)
        #expect(try await eventually { try await observer.call(StatusMethod.self).clients >= 2 })
        await observer.close()
        let socket = try await fixture.netctlJSON(SocketInfo.self, "connect", "127.0.0.1:\(listener.port)")
        let far = try await listener.accept()
        let ended = try await fixture.netctl("end", String(socket.id))
        #expect(ended.stdout.hasPrefix("socket \(socket.id) ended its write side"), "\(ended)")
        #expect(try await Sockets.onThread { try Sockets.readAll(far) }.isEmpty)
        // The peer ends too: netd's `end` event (Node's: the other side has ended).
        close(far)
        let watched = try await watch.wait(limit: .seconds(20))
        let lines = watched.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(watched)")
        let types = lines.compactMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8))["type"]?.stringValue }
        #expect(types == ["connect", "end"], "\(watched.stdout)")

        // list is ls; --json gives both arrays back.
        let listed = try await fixture.netctlJSON(JSONValue.self, "list")
        #expect(listed["sockets"]?.arrayValue?.first?["id"] == .integer(socket.id))
        #expect(listed["servers"]?.arrayValue?.isEmpty == true)

        // call with params from stdin.
        let called = try await run(netctl, ["--socket", fixture.socket, "--json", "call", "socket.get", "-"], stdin: #"{"id": \#(socket.id)}"#, folder: fixture.folder.path)
        #expect(try JSONDecoder().decode(SocketInfo.self, from: Data(called.stdout.utf8)).id == socket.id, "\(called)")

        // exec: a socket without a label is named netd-ID in LISTEN_FDNAMES, and is descriptor 3.
        let script = "import os, socket; s = socket.socket(fileno=3); s.sendall(os.environ['LISTEN_FDNAMES'].encode()); print(os.environ['LISTEN_FDS'])"
        let other = try await fixture.netctlJSON(SocketInfo.self, "connect", "127.0.0.1:\(listener.port)")
        let far2 = try await listener.accept()
        defer { close(far2) }
        let exec = try await run(netctl, ["--socket", fixture.socket, "exec", String(other.id), "--", "python3", "-c", script], folder: fixture.folder.path)
        #expect(exec.status == 0 && exec.stdout == "1\n", "\(exec)")
        #expect(try await Sockets.onThread { try Sockets.readAll(far2) } == Array("netd-\(other.id)".utf8))
        #expect(try await fixture.stop().status == 0)
    }

    /// The issue's promise: from `netctl help` alone, open a connection to a local server, exchange
    /// data, forward a port, watch it, break it with a fault and find it all in the history. The
    /// first session in the help is run as printed, in one shell, with a real redis-server; only its
    /// ports are replaced by free ones.
    @Test func theFirstSessionInTheHelpWorksAsPrinted() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let help = try await run(try Binaries.path("netctl"), ["help"], folder: fixture.folder.path).stdout
        let session = help.components(separatedBy: "\n").drop(while: { !$0.hasPrefix("A first session") }).dropFirst()
            .prefix(while: { !$0.isEmpty })
            .map { line in line.components(separatedBy: "#").first!.trimmingCharacters(in: .whitespaces) }
        #expect(session.count == 6, "\(help)")
        let redisPort = try Sockets.freeListeningPort()
        let forwardPort = try Sockets.freeListeningPort()
        let redis = try ChildProcess(
            "/usr/bin/redis-server", ["--port", "\(redisPort)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], folder: fixture.folder.path)
        defer { redis.signal(SIGKILL) }
        #expect(await eventually { (try? Sockets.connectTCP(redisPort)).map { close($0) } != nil })

        let script = session.map { $0.replacingOccurrences(of: "6379", with: "\(redisPort)").replacingOccurrences(of: "6380", with: "\(forwardPort)") }
            + [
                // Once the watcher has subscribed (a second client beside this status), a client
                // goes through the forward, like `nc`: its PING meets the 200 ms latency.
                "for i in $(seq 200); do netctl status | grep -q '^clients   2$' && break; sleep 0.05; done",
                "printf 'PING\\r\\n' | netctl connect --pipe 127.0.0.1:\(forwardPort)",
                "netctl --json history --server 2 > through.json",
                "kill $!",
            ]
        let ran = try await shell(
            "cd \(fixture.folder.path) && " + script.joined(separator: "\n"), folder: fixture.folder.path,
            environment: ["NETD_SOCKET": fixture.socket])
        #expect(ran.status == 0, "\(script.joined(separator: "\n"))\n\(ran)")
        let out = ran.stdout
        #expect(out.contains("socket 1 open") && out.contains("+PONG"), "\(out)")
        #expect(out.contains("forward 2 listening on [::]:\(forwardPort) -> 127.0.0.1:\(redisPort)"), "\(out)")
        #expect(out.contains("fault 1 added: latency ms=200") && out.contains("on 2, both"), "\(out)")
        #expect(out.contains("ECONN") == false && out.contains("redis"), "\(out)")
        // watch saw the connection come through the forward; the history has both sides of it,
        // each with the fault that acted on it.
        #expect(out.contains(" connection 2 "), "\(out)")
        let through = try JSONDecoder().decode(HistoryQueryMethod.Result.self, from: Data(contentsOf: URL(fileURLWithPath: fixture.folder.path + "/through.json")))
        #expect(through.items.count == 2)
        for item in through.items {
            guard case .socket(let socket) = item else { continue }
            let record = try await fixture.netctl("history", String(socket.id))
            #expect(record.stdout.contains("fault") && record.stdout.contains("latency"), "\(record.stdout)")
        }
        #expect(try await fixture.stop().status == 0)
    }

    @Test func colourOnlyOnATerminalAndNeverWithNoColor() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        _ = try await fixture.netctl("listen", "127.0.0.1:0", "--label", "paint")
        let escape = "\u{1B}["
        let piped = try await fixture.netctl("ls")
        #expect(piped.stdout.contains("paint") && !piped.stdout.contains(escape))
        // script(1) gives netctl a terminal of its own. NO_COLOR is set for each run as it should be
        // (swift test sets NO_COLOR=1 for everything it starts).
        let command = "netctl --socket \(fixture.socket) ls"
        let terminal = try await shell("script -qec 'env -u NO_COLOR \(command)' /dev/null", folder: fixture.folder.path, environment: ["TERM": "xterm"])
        #expect(terminal.stdout.contains("paint") && terminal.stdout.contains(escape + "32mlistening"), "\(terminal.stdout)")
        let empty = try await shell("script -qec 'env NO_COLOR= \(command)' /dev/null", folder: fixture.folder.path, environment: ["TERM": "xterm"])
        #expect(empty.stdout.contains(escape + "32mlistening"), "an empty NO_COLOR is no NO_COLOR: \(empty.stdout)")
        let noColor = try await shell("script -qec 'env NO_COLOR=1 \(command)' /dev/null", folder: fixture.folder.path, environment: ["TERM": "xterm"])
        #expect(noColor.stdout.contains("paint") && !noColor.stdout.contains(escape), "\(noColor.stdout)")
        #expect(try await fixture.stop().status == 0)
    }

    @Test func errorLinesSayWhatHappenedAndWhatToDo() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let netctl = try Binaries.path("netctl")
        // No netd: exit 3, one line that says how to start it.
        let absent = try await run(netctl, ["--socket", folder.path + "/none.sock", "ping"], folder: folder.path)
        #expect(absent.status == 3 && absent.stderr.contains("netd is not running: no socket at \(folder.path)/none.sock"), "\(absent.stderr)")
        #expect(absent.stderr.contains("start it with `netd`") && absent.stderr.split(separator: "\n").count == 1)
        // A socket file left by a netd that is gone.
        let stale = try Sockets.listenUnix(folder.path + "/stale.sock")
        stale.close()
        let left = try await run(netctl, ["--socket", folder.path + "/stale.sock", "ping"], folder: folder.path)
        #expect(left.status == 3 && left.stderr.contains("left from one that stopped"), "\(left.stderr)")

        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        chmod(fixture.folder.path, 0o755)
        // Permission denied on the socket file: the path, the uid, and how to get in.
        let denied = try await shell("setpriv --reuid=65534 --regid=65534 --clear-groups netctl --socket \(fixture.socket) ping", folder: fixture.folder.path)
        #expect(denied.status == 3, "\(denied)")
        #expect(denied.stderr.contains("permission denied on \(fixture.socket)") && denied.stderr.contains("you are uid 65534"), "\(denied.stderr)")
        #expect(denied.stderr.contains("--allow-group"))
        // Reaching the socket but not admitted: netd's refusal, naming the uid and the flags.
        chmod(fixture.socket, 0o666)
        let refused = try await shell("setpriv --reuid=65534 --regid=65534 --clear-groups netctl --socket \(fixture.socket) ping", folder: fixture.folder.path)
        #expect(refused.status == 1 && refused.stderr.contains("uid 65534 may not use this netd") && refused.stderr.contains("--allow-uid 65534"), "\(refused)")
        // A refused connect names the address tried.
        let closed = try Sockets.refusingTCP()
        defer { closed.close() }
        let connect = try await fixture.netctl("connect", "127.0.0.1:\(closed.port)")
        #expect(connect.status == 1 && connect.stderr.contains("ECONNREFUSED 127.0.0.1:\(closed.port)"), "\(connect.stderr)")
        #expect(try await fixture.stop().status == 0)
    }

    @Test func helpGroupsCommandsAndEveryCommandHasAnExample() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let netctl = try Binaries.path("netctl")
        let help = try await run(netctl, ["help"], folder: folder.path)
        for group in ["CONNECTIONS", "SERVERS AND FORWARDS", "WATCHING", "HISTORY", "FAULTS", "DAEMON"] {
            #expect(help.stdout.contains(group + " SUBCOMMANDS:"), "\(group)")
        }
        let commands = [
            "connect", "send", "recv", "pipe", "end", "close", "configure", "join", "listen", "accept", "forward", "exec", "ls", "get",
            "watch", "wait", "history", "stats", "prune", "ping", "status", "methods", "call",
        ]
        for command in commands {
            #expect(help.stdout.contains("\n  " + command), "\(command) is listed")
            let own = try await run(netctl, ["help", command], folder: folder.path)
            #expect(own.status == 0 && own.stdout.contains("USAGE: netctl " + command), "\(command)")
            #expect(own.stdout.lowercased().contains("example"), "netctl help \(command) shows an example")
        }
        for sub in ["add", "ls", "rm"] {
            let own = try await run(netctl, ["help", "fault", sub], folder: folder.path)
            #expect(own.stdout.lowercased().contains("example"), "netctl help fault \(sub)")
        }
    }

    @Test func completionScriptsCompleteSubcommandsAndOptions() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for shell in ["bash", "zsh", "fish"] {
            let script = try await run(try Binaries.path("netctl"), ["--generate-completion-script", shell], folder: folder.path)
            #expect(script.status == 0)
            let name = shell == "zsh" ? "_netctl" : shell == "fish" ? "netctl.fish" : "netctl.bash"
            try script.stdout.write(toFile: folder.path + "/" + name, atomically: true, encoding: .utf8)
        }
        // bash, asked as readline asks: COMP_WORDS and COMP_CWORD, then the function `complete` named.
        let bash = try await self.shell(
            #"""
            shopt -s extglob; source "$FOLDER/netctl.bash"; function=$(complete -p netctl | sed 's/.*-F \([^ ]*\) .*/\1/')
            ask() {
                COMPREPLY=(); COMP_LINE="$*"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_POINT=${#COMP_LINE}
                "$function" "$1" "${@: -1}" "${@: -2:1}"; echo "${COMPREPLY[*]}"
            }
            ask netctl fo; ask netctl sta; ask netctl forward --p; ask netctl fault ""; ask netctl fault add 1 ""
            """#, folder: folder.path, executable: "/bin/bash", environment: ["FOLDER": folder.path])
        let lines = bash.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count >= 5, "\(bash)")
        if lines.count >= 5 {
            #expect(lines[0] == "forward")
            #expect(Set(lines[1].split(separator: " ")) == ["stats", "status"])
            #expect(lines[2].split(separator: " ").contains("--persist"))
            #expect(Set(lines[3].split(separator: " ")).isSuperset(of: ["add", "ls", "rm"]))
            #expect(lines[4].split(separator: " ").contains("latency"))
        }
        // fish, with ours first on its completion path (fish ships completions for Arch Linux's
        // unrelated netctl; a user's own ~/.config/fish/completions comes first the same way).
        let fish = try await shell(
            #"set fish_complete_path $FOLDER $fish_complete_path; complete -C "netctl fo"; complete -C "netctl fault "; complete -C "netctl forward --p""#,
            folder: folder.path, executable: "/usr/bin/fish", environment: ["FOLDER": folder.path])
        #expect(fish.stdout.contains("forward\tListen") && fish.stdout.contains("add\t") && fish.stdout.contains("--persist\t"), "\(fish)")
        // zsh, at a real prompt: an interactive zsh in a pseudo-terminal (zpty) with compinit loading
        // ours from fpath, a Tab typed after the words, and compadd made to print what it is given.
        try Self.zshSetup(fpath: folder.path).write(toFile: folder.path + "/setup.zsh", atomically: true, encoding: .utf8)
        try Self.zshAsk.write(toFile: folder.path + "/ask.zsh", atomically: true, encoding: .utf8)
        for (line, expected) in [("netctl fo", ["forward"]), ("netctl sta", ["stats", "status"]), ("netctl forward --p", ["--persist"])] {
            let asked = try await shell(
                "zsh -f \(folder.path)/ask.zsh \(folder.path)/setup.zsh '\(line)'", folder: folder.path, executable: "/bin/sh")
            let offered = Set(asked.stdout.split(whereSeparator: \.isNewline).map(String.init))
            #expect(asked.status == 0 && offered.isSuperset(of: expected), "zsh, \(line): \(asked)")
        }
    }

    /// What an interactive zsh loads before it is asked: completion from `fpath`, no prompt, Tab
    /// completing, and compadd printing each match between two NUL lines (after zsh-capture-completion).
    private static func zshSetup(fpath: String) -> String {
        #"""
        PROMPT=
        fpath=(\#(fpath) $fpath)
        autoload -U compinit
        compinit -u -d \#(fpath)/zcompdump
        bindkey '^M' undefined
        bindkey '^J' undefined
        bindkey '^I' complete-word
        null-line () { echo -E - $'\0' }
        compprefuncs=( null-line )
        comppostfuncs=( null-line exit )
        zstyle ':completion:*' list-grouped false
        zstyle ':completion:*' insert-tab false
        compadd () {
            if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
                builtin compadd "$@"
                return $?
            fi
            typeset -a __hits __dscr
            builtin compadd -A __hits -D __dscr "$@"
            [[ -z $__hits ]] && return
            for i in {1..$#__hits}; do echo -E - $__hits[$i]; done
        }
        """#
    }

    /// `zsh -f ask.zsh SETUP LINE`: types LINE and a Tab into a zsh under zpty, prints the matches.
    private static let zshAsk = #"""
        zmodload zsh/zpty
        zpty z zsh -f -i
        zpty -w z "source $1"
        zpty -w z "$2"$'	'
        integer seen=0
        while zpty -r z; do :; done | while IFS= read -r line; do
            if [[ $line == *$'\0\r' ]]; then
                (( seen++ )) && exit 0 || continue
            fi
            (( seen )) && echo -E - $line
        done
        exit 2
        """#

    /// `command` in a shell (`sh` unless told), with the built netctl first on PATH.
    private func shell(_ command: String, folder: String, executable: String = "/bin/sh", environment: [String: String] = [:]) async throws -> ProcessOutput {
        let bin = URL(fileURLWithPath: try Binaries.path("netctl")).deletingLastPathComponent().path
        var environment = environment
        environment["PATH"] = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return try await ChildProcess(executable, ["-c", command], folder: folder, environment: environment).wait()
    }
}
