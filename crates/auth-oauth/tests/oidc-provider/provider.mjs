// A real OpenID provider for auth-oauth's end-to-end tests: panva's oidc-provider, certified
// by the OpenID Foundation, on localhost. Usage: node provider.mjs PORT REDIRECT_URI
// The email claims come from the userinfo endpoint, as with providers that keep ID tokens
// small. Accounts (password "pass" for each): ada (verified email), eve (unverified email of
// someone else's account). Clients: auth-test (the one under test), other-client.
import Provider from "oidc-provider";

const [port, redirect] = process.argv.slice(2);
const accounts = {
  ada: { email: "ada@example.com", email_verified: true },
  eve: { email: "victim@example.com", email_verified: false },
};

const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: redirect.split(","),
  grant_types: ["authorization_code"],
  response_types: ["code"],
  token_endpoint_auth_method: "client_secret_basic",
});

const provider = new Provider(`http://localhost:${port}`, {
  clients: [client("auth-test", "auth-test-secret"), client("other-client", "other-secret")],
  async findAccount(_ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ["test-cookie-key-0123456789"] },
});
provider.listen(Number(port), () => console.log("READY"));
