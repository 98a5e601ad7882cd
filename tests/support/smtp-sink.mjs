// A real SMTP server for the tests (npm smtp-server and mailparser, pinned in
// package.json). Usage: node tests/support/smtp-sink.mjs <dir> [port]
//
// Accepts every message on 127.0.0.1 (no TLS, no auth), parses it, and writes
// it to <dir>/<n>.json as {from, to, subject, text, html, headers}, renamed
// into place so a reader never sees half a file. Prints "listening <port>"
// once it accepts connections. Exits on SIGTERM.
import { SMTPServer } from "smtp-server";
import { simpleParser } from "mailparser";
import { writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";

const [dir, port = "0"] = process.argv.slice(2);
if (!dir) {
  console.error("usage: smtp-sink.mjs <dir> [port]");
  process.exit(2);
}
let count = 0;

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  onData(stream, session, callback) {
    simpleParser(stream)
      .then((mail) => {
        count += 1;
        const name = String(count).padStart(6, "0");
        const record = {
          from: mail.from?.text ?? "",
          to: (session.envelope.rcptTo ?? []).map((r) => r.address),
          subject: mail.subject ?? "",
          text: mail.text ?? "",
          html: typeof mail.html === "string" ? mail.html : "",
          content_type: mail.headers.get("content-type")?.value ?? "",
        };
        const partial = join(dir, `.${name}.partial`);
        writeFileSync(partial, JSON.stringify(record));
        renameSync(partial, join(dir, `${name}.json`));
        callback();
      })
      .catch(callback);
  },
});
server.on("error", (error) => console.error(`smtp-sink: ${error.message}`));
server.listen(Number(port), "127.0.0.1", () => {
  console.log(`listening ${server.server.address().port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
