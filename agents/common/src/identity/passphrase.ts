// Where an agent's keystore passphrase comes from: BAZAAR_PASSPHRASE, else a hidden prompt
// on a terminal. Never from a flag (it would land in shell history and `ps`).
import { KeystoreError } from './keystore.ts';

export async function readPassphrase(opts: { env?: NodeJS.ProcessEnv; confirm?: boolean; prompt?: string; input?: NodeJS.ReadStream; output?: NodeJS.WriteStream } = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const fromEnv = env.BAZAAR_PASSPHRASE;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stderr;
  if (!input.isTTY) throw new KeystoreError('no passphrase: set BAZAAR_PASSPHRASE or run on a terminal to be prompted');
  const first = await promptHidden(opts.prompt ?? 'Passphrase: ', input, output);
  if (opts.confirm) {
    const again = await promptHidden('Repeat passphrase: ', input, output);
    if (again !== first) throw new KeystoreError('the passphrases do not match');
  }
  return first;
}

function promptHidden(prompt: string, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    output.write(prompt);
    let buf = '';
    const wasRaw = input.isRaw;
    input.setRawMode?.(true);
    input.resume();
    const done = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode?.(wasRaw);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new KeystoreError('cancelled'));
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    input.on('data', onData);
  });
}
