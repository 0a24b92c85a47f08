/** `cxr token`: API keys for `cxr serve --auth`. */
import { Command } from 'commander';
import { createToken, readTokenFile } from '../../serve/tokens.js';

export function tokenCommand(): Command {
  const token = new Command('token').description('API keys (bearer tokens) for cxr serve --auth');
  token
    .command('create')
    .description('make a new token: printed once on stdout, only its hash kept in the file (created mode 0600)')
    .requiredOption('-f, --file <tokens.txt>', 'the token file cxr serve --auth reads')
    .requiredOption('-l, --label <name>', 'whose token it is (shown in the server log instead of the token)')
    .addHelpText(
      'after',
      `
Examples:
  $ cxr token create --file tokens.txt --label pacs-bridge
  $ cxr serve --auth tokens.txt
  $ curl -H "Authorization: Bearer <token>" -F image=@chest.png http://127.0.0.1:8080/api/v1/analyze
To revoke a token, delete its line from the file and restart the server.`,
    )
    .action((options: { file: string; label: string }) => {
      const value = createToken(options.file, options.label);
      process.stdout.write(`${value}\n`);
      process.stderr.write(`token "${options.label}" added to ${options.file} (only its hash is stored; this is the only time it is shown)\n`);
    });
  token
    .command('list')
    .description('the labels of the tokens in a file')
    .requiredOption('-f, --file <tokens.txt>', 'a token file')
    .action((options: { file: string }) => {
      for (const label of readTokenFile(options.file).hashes.values()) process.stdout.write(`${label}\n`);
    });
  return token;
}
