#!/usr/bin/env node
"use strict";
var __extends = (this && this.__extends) || (function () {
    var extendStatics = function (d, b) {
        extendStatics = Object.setPrototypeOf ||
            ({ __proto__: [] } instanceof Array && function (d, b) { d.__proto__ = b; }) ||
            function (d, b) { for (var p in b) if (Object.prototype.hasOwnProperty.call(b, p)) d[p] = b[p]; };
        return extendStatics(d, b);
    };
    return function (d, b) {
        if (typeof b !== "function" && b !== null)
            throw new TypeError("Class extends value " + String(b) + " is not a constructor or null");
        extendStatics(d, b);
        function __() { this.constructor = d; }
        d.prototype = b === null ? Object.create(b) : (__.prototype = b.prototype, new __());
    };
})();
var __awaiter = (this && this.__awaiter) || function (thisArg, _arguments, P, generator) {
    function adopt(value) { return value instanceof P ? value : new P(function (resolve) { resolve(value); }); }
    return new (P || (P = Promise))(function (resolve, reject) {
        function fulfilled(value) { try { step(generator.next(value)); } catch (e) { reject(e); } }
        function rejected(value) { try { step(generator["throw"](value)); } catch (e) { reject(e); } }
        function step(result) { result.done ? resolve(result.value) : adopt(result.value).then(fulfilled, rejected); }
        step((generator = generator.apply(thisArg, _arguments || [])).next());
    });
};
var __generator = (this && this.__generator) || function (thisArg, body) {
    var _ = { label: 0, sent: function() { if (t[0] & 1) throw t[1]; return t[1]; }, trys: [], ops: [] }, f, y, t, g = Object.create((typeof Iterator === "function" ? Iterator : Object).prototype);
    return g.next = verb(0), g["throw"] = verb(1), g["return"] = verb(2), typeof Symbol === "function" && (g[Symbol.iterator] = function() { return this; }), g;
    function verb(n) { return function (v) { return step([n, v]); }; }
    function step(op) {
        if (f) throw new TypeError("Generator is already executing.");
        while (g && (g = 0, op[0] && (_ = 0)), _) try {
            if (f = 1, y && (t = op[0] & 2 ? y["return"] : op[0] ? y["throw"] || ((t = y["return"]) && t.call(y), 0) : y.next) && !(t = t.call(y, op[1])).done) return t;
            if (y = 0, t) op = [op[0] & 2, t.value];
            switch (op[0]) {
                case 0: case 1: t = op; break;
                case 4: _.label++; return { value: op[1], done: false };
                case 5: _.label++; y = op[1]; op = [0]; continue;
                case 7: op = _.ops.pop(); _.trys.pop(); continue;
                default:
                    if (!(t = _.trys, t = t.length > 0 && t[t.length - 1]) && (op[0] === 6 || op[0] === 2)) { _ = 0; continue; }
                    if (op[0] === 3 && (!t || (op[1] > t[0] && op[1] < t[3]))) { _.label = op[1]; break; }
                    if (op[0] === 6 && _.label < t[1]) { _.label = t[1]; t = op; break; }
                    if (t && _.label < t[2]) { _.label = t[2]; _.ops.push(op); break; }
                    if (t[2]) _.ops.pop();
                    _.trys.pop(); continue;
            }
            op = body.call(thisArg, _);
        } catch (e) { op = [6, e]; y = 0; } finally { f = t = 0; }
        if (op[0] & 5) throw op[1]; return { value: op[0] ? op[1] : void 0, done: true };
    }
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.UsageError = void 0;
exports.parseTarget = parseTarget;
exports.parseListen = parseListen;
exports.describeTarget = describeTarget;
exports.connectUrl = connectUrl;
exports.startTcpForward = startTcpForward;
exports.main = main;
// The `pirelay` client command: `pirelay tcp <device>:<port>` (or `pirelay tcp <tunnel-name>`)
// opens a local port and carries each connection to it over its own WebSocket to the relay, which
// joins it to a TCP stream on the device. It runs on Node ≥ 20 and on Bun alike, so it uses only
// node:net and a WebSocket that can send headers (Bun's, Node's global, or undici's on Node 20).
//
// The wire on that WebSocket: binary messages are raw TCP bytes, both ways; the text message
// {"t":"eof"} says that side half-closed (TCP FIN); {"t":"error","code","message"} from the
// relay says the connection failed and why. The relay closes the WebSocket once both sides are done.
var node_fs_1 = require("node:fs");
var node_net_1 = require("node:net");
var node_path_1 = require("node:path");
var node_url_1 = require("node:url");
var node_util_1 = require("node:util");
var OPEN = 1;
var EOF_MESSAGE = '{"t":"eof"}';
/** Stop reading the local socket while this much is queued on the WebSocket, resume below LOW. */
var HIGH_WATER = 1024 * 1024;
var LOW_WATER = 256 * 1024;
/** After both sides half-closed, the relay closes the WebSocket; this long and we do it. */
var CLOSE_WAIT_MS = 5000;
var UsageError = /** @class */ (function (_super) {
    __extends(UsageError, _super);
    function UsageError() {
        return _super !== null && _super.apply(this, arguments) || this;
    }
    return UsageError;
}(Error));
exports.UsageError = UsageError;
/** `device:port` names a port on a device; anything else is a tunnel name. */
function parseTarget(spec) {
    var m = /^(.+):(\d{1,5})$/.exec(spec);
    if (m) {
        var port = Number(m[2]);
        if (port < 1 || port > 65535)
            throw new UsageError("bad port in ".concat(spec));
        return { device: m[1], port: port };
    }
    if (!spec || spec.includes('/'))
        throw new UsageError("bad target ".concat(JSON.stringify(spec), ": use <device>:<port> or <tunnel-name>"));
    return { tunnel: spec };
}
/** `2222`, `127.0.0.1:2222` or `[::1]:2222`. Without a host, only this machine may connect. */
function parseListen(spec) {
    var _a;
    var m = (_a = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(spec)) !== null && _a !== void 0 ? _a : /^()()(\d{1,5})$/.exec(spec);
    if (!m)
        throw new UsageError("bad --listen ".concat(JSON.stringify(spec), ": use [host:]port"));
    var port = Number(m[3]);
    if (port > 65535)
        throw new UsageError("bad port in --listen ".concat(spec));
    return { host: m[1] || m[2] || '127.0.0.1', port: port };
}
function describeTarget(target) {
    return 'tunnel' in target ? target.tunnel : "".concat(target.device, ":").concat(target.port);
}
/** The relay endpoint that carries one TCP connection, as a ws:// or wss:// URL. */
function connectUrl(relay, target) {
    var base = relay.replace(/\/+$/, '');
    var path = 'tunnel' in target
        ? "/api/v1/tunnels/".concat(encodeURIComponent(target.tunnel), "/connect")
        : "/api/v1/devices/".concat(encodeURIComponent(target.device), "/tcp/").concat(target.port, "/connect");
    var url = new URL(base + path);
    if (url.protocol === 'https:')
        url.protocol = 'wss:';
    else if (url.protocol === 'http:')
        url.protocol = 'ws:';
    else if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
        throw new UsageError("relay URL must be http(s) or ws(s): ".concat(relay));
    return url.toString();
}
/**
 * A WebSocket class, and whether it can send an Authorization header. Bun's and Node's (undici)
 * take `{ headers }`; elsewhere (Deno) the key has to ride in the URL instead.
 */
function webSocketClass() {
    return __awaiter(this, void 0, void 0, function () {
        var isDeno, global, undici;
        return __generator(this, function (_a) {
            switch (_a.label) {
                case 0:
                    isDeno = 'Deno' in globalThis;
                    global = globalThis.WebSocket;
                    if (typeof global === 'function')
                        return [2 /*return*/, { WebSocket: global, headers: !isDeno }];
                    return [4 /*yield*/, Promise.resolve().then(function () { return require('undici'); })];
                case 1:
                    undici = (_a.sent());
                    return [2 /*return*/, { WebSocket: undici.WebSocket, headers: true }];
            }
        });
    });
}
/** After a failed handshake the WebSocket API says nothing useful; the relay's plain answer does. */
function explainRefusal(url, headers) {
    return __awaiter(this, void 0, void 0, function () {
        var res, body, e_1;
        var _a;
        return __generator(this, function (_b) {
            switch (_b.label) {
                case 0:
                    _b.trys.push([0, 3, , 4]);
                    return [4 /*yield*/, fetch(url.replace(/^ws/, 'http'), { headers: headers, signal: AbortSignal.timeout(5000) })];
                case 1:
                    res = _b.sent();
                    return [4 /*yield*/, res.json().catch(function () { return null; })];
                case 2:
                    body = (_b.sent());
                    if (res.status === 426)
                        return [2 /*return*/, 'the relay accepted the request but the WebSocket upgrade failed'];
                    return [2 /*return*/, "".concat(res.status, " ").concat([body === null || body === void 0 ? void 0 : body.code, (_a = body === null || body === void 0 ? void 0 : body.error) !== null && _a !== void 0 ? _a : body === null || body === void 0 ? void 0 : body.message].filter(Boolean).join(': ') || res.statusText).trim()];
                case 3:
                    e_1 = _b.sent();
                    return [2 /*return*/, e_1 instanceof Error ? e_1.message : String(e_1)];
                case 4: return [2 /*return*/];
            }
        });
    });
}
function startTcpForward(opts) {
    return __awaiter(this, void 0, void 0, function () {
        var target, listen, log, _a, WebSocket, canSendHeaders, url, headers, live, carry, server, address;
        var _b;
        return __generator(this, function (_c) {
            switch (_c.label) {
                case 0:
                    target = typeof opts.target === 'string' ? parseTarget(opts.target) : opts.target;
                    listen = typeof opts.listen === 'string' ? parseListen(opts.listen) : opts.listen;
                    log = (_b = opts.log) !== null && _b !== void 0 ? _b : (function (line) { return process.stderr.write(line + '\n'); });
                    return [4 /*yield*/, webSocketClass()];
                case 1:
                    _a = _c.sent(), WebSocket = _a.WebSocket, canSendHeaders = _a.headers;
                    url = connectUrl(opts.relay, target);
                    headers = {};
                    if (opts.apiKey && canSendHeaders)
                        headers.authorization = "Bearer ".concat(opts.apiKey);
                    else if (opts.apiKey)
                        url += "".concat(url.includes('?') ? '&' : '?', "api_key=").concat(encodeURIComponent(opts.apiKey));
                    live = new Set();
                    carry = function (local) {
                        var ws = canSendHeaders && opts.apiKey ? new WebSocket(url, { headers: headers }) : new WebSocket(url);
                        ws.binaryType = 'arraybuffer';
                        var entry = { local: local, ws: ws };
                        live.add(entry);
                        var opened = false;
                        var sentEof = false;
                        var gotEof = false;
                        var failed = false;
                        var drainTimer;
                        var closeTimer;
                        var closeWs = function (code, reason) {
                            if (code === void 0) { code = 1000; }
                            if (reason === void 0) { reason = ''; }
                            if (ws.readyState <= OPEN)
                                ws.close(code, reason);
                        };
                        // Nothing is read from the local socket until the relay has the stream open.
                        local.pause();
                        local.on('data', function (chunk) {
                            ws.send(chunk);
                            // The WebSocket buffers whatever we send; stop reading the local app until it drains.
                            if (ws.bufferedAmount > HIGH_WATER && !drainTimer) {
                                local.pause();
                                drainTimer = setInterval(function () {
                                    if (ws.bufferedAmount > LOW_WATER && ws.readyState === OPEN)
                                        return;
                                    clearInterval(drainTimer);
                                    drainTimer = undefined;
                                    local.resume();
                                }, 5);
                            }
                        });
                        local.on('end', function () {
                            sentEof = true;
                            if (ws.readyState === OPEN)
                                ws.send(EOF_MESSAGE);
                        });
                        local.on('error', function () {
                            // 'close' follows; it decides.
                        });
                        local.on('close', function () {
                            clearInterval(drainTimer);
                            if (sentEof && gotEof && !failed) {
                                // A clean end both ways: the relay closes the WebSocket once the device has everything.
                                closeTimer = setTimeout(function () { return closeWs(1000, 'done'); }, CLOSE_WAIT_MS);
                            }
                            else {
                                closeWs(4000, 'local connection closed');
                            }
                        });
                        ws.addEventListener('open', function () {
                            opened = true;
                            if (!local.destroyed)
                                local.resume();
                        });
                        ws.addEventListener('message', function (ev) {
                            var _a, _b;
                            var data = ev.data;
                            if (typeof data !== 'string') {
                                // The WebSocket cannot be paused, so a slow local reader queues in the socket's buffer.
                                if (!local.destroyed)
                                    local.write(new Uint8Array(data));
                                return;
                            }
                            var msg;
                            try {
                                msg = JSON.parse(data);
                            }
                            catch (_c) {
                                return;
                            }
                            if (msg.t === 'eof') {
                                gotEof = true;
                                local.end();
                            }
                            else if (msg.t === 'error') {
                                failed = true;
                                log("pirelay: ".concat(describeTarget(target), ": ").concat((_a = msg.code) !== null && _a !== void 0 ? _a : 'ERROR', ": ").concat((_b = msg.message) !== null && _b !== void 0 ? _b : 'the connection failed'));
                                local.destroy();
                            }
                        });
                        ws.addEventListener('close', function (ev) {
                            live.delete(entry);
                            clearTimeout(closeTimer);
                            clearInterval(drainTimer);
                            if (!opened) {
                                failed = true;
                                local.destroy();
                                void explainRefusal(url, headers).then(function (why) { return log("pirelay: could not open a connection to ".concat(describeTarget(target), ": ").concat(why)); });
                                return;
                            }
                            if (local.destroyed)
                                return;
                            // A clean close after the relay's eof: let what we still hold reach the local app first.
                            if (ev.code === 1000 && gotEof && !failed)
                                local.end(function () { return local.destroy(); });
                            else
                                local.destroy();
                        });
                        ws.addEventListener('error', function () {
                            // 'close' always follows and handles it.
                        });
                    };
                    server = node_net_1.default.createServer({ allowHalfOpen: true, pauseOnConnect: true }, carry);
                    return [4 /*yield*/, new Promise(function (resolveListen, reject) {
                            server.once('error', reject);
                            server.listen(listen.port, listen.host, function () {
                                server.off('error', reject);
                                resolveListen();
                            });
                        })];
                case 2:
                    _c.sent();
                    address = server.address();
                    return [2 /*return*/, {
                            host: address.address,
                            port: address.port,
                            get connections() {
                                return live.size;
                            },
                            close: function () {
                                return new Promise(function (done) {
                                    for (var _i = 0, live_1 = live; _i < live_1.length; _i++) {
                                        var _a = live_1[_i], local = _a.local, ws = _a.ws;
                                        local.destroy();
                                        if (ws.readyState <= OPEN)
                                            ws.close(1000, 'client stopping');
                                    }
                                    live.clear();
                                    server.close(function () { return done(); });
                                });
                            },
                        }];
            }
        });
    });
}
// --- the command line ---
var USAGE = "pirelay \u2014 reach TCP services on your devices through the relay\n\nUsage:\n  pirelay tcp <device>:<port> [--listen [HOST:]PORT] [options]\n  pirelay tcp <tunnel-name>   [--listen [HOST:]PORT] [options]\n\nOptions:\n  --listen [HOST:]PORT   local address to listen on (default 127.0.0.1:0, a free port)\n  --relay URL            relay base URL (default: $PIRELAY_URL, else \"url\" in the config file)\n  --api-key KEY          API key (default: $PIRELAY_API_KEY, else \"apiKey\" in the config file)\n  --config PATH          JSON file with {\"url\", \"apiKey\"} (default: .pirelay/dev.json if present,\n                         which `npm start` writes)\n\nExample:\n  pirelay tcp demo-pi:22 --listen 2222 &  ssh -p 2222 pi@127.0.0.1\n";
function readConfig(path) {
    var file = path !== null && path !== void 0 ? path : ((0, node_fs_1.existsSync)((0, node_path_1.resolve)('.pirelay/dev.json')) ? (0, node_path_1.resolve)('.pirelay/dev.json') : undefined);
    if (!file)
        return {};
    var parsed;
    try {
        parsed = JSON.parse((0, node_fs_1.readFileSync)(file, 'utf8'));
    }
    catch (e) {
        throw new UsageError("cannot read config ".concat(file, ": ").concat(e instanceof Error ? e.message : String(e)));
    }
    var c = (parsed !== null && parsed !== void 0 ? parsed : {});
    return { url: typeof c.url === 'string' ? c.url : undefined, apiKey: typeof c.apiKey === 'string' ? c.apiKey : undefined };
}
function main(argv) {
    return __awaiter(this, void 0, void 0, function () {
        var _a, values, positionals, command, spec, extra, config, relay, apiKey, target, forward, shown;
        var _b;
        return __generator(this, function (_c) {
            switch (_c.label) {
                case 0:
                    _a = (0, node_util_1.parseArgs)({
                        args: argv,
                        allowPositionals: true,
                        options: {
                            listen: { type: 'string' },
                            relay: { type: 'string' },
                            'api-key': { type: 'string' },
                            config: { type: 'string' },
                            help: { type: 'boolean', short: 'h', default: false },
                        },
                    }), values = _a.values, positionals = _a.positionals;
                    command = positionals[0], spec = positionals[1], extra = positionals.slice(2);
                    if (values.help || !command || command === 'help') {
                        process.stdout.write(USAGE);
                        return [2 /*return*/, 0];
                    }
                    if (command !== 'tcp')
                        throw new UsageError("unknown command ".concat(command));
                    if (!spec || extra.length)
                        throw new UsageError('tcp needs exactly one target: <device>:<port> or <tunnel-name>');
                    config = readConfig(values.config);
                    relay = values.relay || process.env.PIRELAY_URL || config.url;
                    apiKey = values['api-key'] || process.env.PIRELAY_API_KEY || config.apiKey;
                    if (!relay)
                        throw new UsageError('no relay: pass --relay URL, set PIRELAY_URL, or use --config');
                    if (!apiKey)
                        process.stderr.write('pirelay: warning: no API key (--api-key, PIRELAY_API_KEY or --config); the relay will likely refuse\n');
                    target = parseTarget(spec);
                    return [4 /*yield*/, startTcpForward({ relay: relay, apiKey: apiKey, target: target, listen: (_b = values.listen) !== null && _b !== void 0 ? _b : '127.0.0.1:0' })];
                case 1:
                    forward = _c.sent();
                    shown = forward.host.includes(':') ? "[".concat(forward.host, "]") : forward.host;
                    process.stdout.write("listening on ".concat(shown, ":").concat(forward.port, " \u2192 ").concat(describeTarget(target), "\n"));
                    return [4 /*yield*/, new Promise(function (done) {
                            var stop = function () { return void forward.close().then(done); };
                            process.once('SIGINT', stop);
                            process.once('SIGTERM', stop);
                        })];
                case 2:
                    _c.sent();
                    return [2 /*return*/, 0];
            }
        });
    });
}
function isEntryPoint() {
    var script = process.argv[1];
    if (!script)
        return false;
    try {
        return import.meta.url === (0, node_url_1.pathToFileURL)((0, node_fs_1.realpathSync)(script)).href;
    }
    catch (_a) {
        return false;
    }
}
if (isEntryPoint()) {
    main(process.argv.slice(2)).then(function (code) { return process.exit(code); }, function (e) {
        var _a;
        if (e instanceof UsageError || ((_a = e.code) === null || _a === void 0 ? void 0 : _a.startsWith('ERR_PARSE_ARGS'))) {
            process.stderr.write("pirelay: ".concat(e.message, "\n\n").concat(USAGE));
            process.exit(2);
        }
        process.stderr.write("pirelay: ".concat(e instanceof Error ? e.message : String(e), "\n"));
        process.exit(1);
    });
}
