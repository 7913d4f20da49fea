// A Node.js `$default` handler doing the router's checks of a `media` frame, with its own
// Runtime API loop (no dependencies, as a Node.js Lambda needs none for this). Only the CPU
// comparison in BENCHMARKS.md uses it: `lambda_harness --cpu` runs it as it runs the Rust router.
import http from "node:http";

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const base = "/2018-06-01/runtime/invocation/";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const DIGITS = /^[0-9]{1,20}$/;
const STREAM_SID = /^MZ[0-9a-f]{32}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ACCOUNT_SID = /^AC[0-9a-f]{32}$/;

function handler(event) {
  const ctx = event.requestContext;
  if (ctx.eventType !== "MESSAGE" || !ACCOUNT_SID.test(ctx.authorizer?.accountSid ?? "")) {
    return { statusCode: 403 };
  }
  const body = event.body ?? "";
  if (event.isBase64Encoded || body.length > 65536) return { statusCode: 400 };
  let f;
  try { f = JSON.parse(body); } catch { return { statusCode: 400 }; }
  const m = f.media;
  const ok = f.event === "media" && STREAM_SID.test(f.streamSid) && DIGITS.test(f.sequenceNumber)
    && m && (m.track === "inbound" || m.track === "outbound")
    && DIGITS.test(m.chunk) && DIGITS.test(m.timestamp)
    && typeof m.payload === "string" && BASE64.test(m.payload) && m.payload.length <= 43692;
  return { statusCode: ok ? 200 : 400 };
}

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve({ headers: res.headers, data }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

for (;;) {
  const next = await request("GET", base + "next");
  const id = next.headers["lambda-runtime-aws-request-id"];
  const answer = JSON.stringify(handler(JSON.parse(next.data)));
  await request("POST", base + id + "/response", answer);
}
