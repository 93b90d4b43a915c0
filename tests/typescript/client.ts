// A small typed client over the types openapi-typescript generates from openapi/openapi.json
// (into ./schema.d.ts, beside this file, by tests/test_client_typescript.py). It must compile
// with `tsc --strict`: the spec gives a TypeScript user real types, not `unknown`.
import createClient from "openapi-fetch";
import type { components, paths, webhooks } from "./schema";

type Schemas = components["schemas"];
export type Message = Schemas["Message"];
export type Problem = Schemas["Problem"];

export function mailgate(baseUrl: string, apiKey: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });
}

/** A problem's stable type, to switch on. */
export function describe(problem: Problem): string {
  const type: Schemas["ProblemType"] = problem.type;
  switch (type) {
    case "not-found":
      return "gone";
    case "mailbox-timeout":
    case "mailbox-busy":
      return "try again";
    default:
      return `${problem.status} ${problem.title}`;
  }
}

export async function unreadSubjects(
  client: ReturnType<typeof mailgate>,
  accountId: string,
): Promise<string[]> {
  const { data, error } = await client.GET("/v1/accounts/{account_id}/messages", {
    params: { path: { account_id: accountId }, query: { unread: true, limit: 20 } },
  });
  if (error) throw new Error(describe(error));
  // every field of an answer is required: a subject is `string | null`, never undefined
  return data.items.map((m) => m.subject ?? "(no subject)");
}

export async function readMessage(
  client: ReturnType<typeof mailgate>,
  accountId: string,
  messageId: string,
): Promise<{ message: Message; source: Blob }> {
  const path = { account_id: accountId, message_id: messageId };
  const got = await client.GET("/v1/accounts/{account_id}/messages/{message_id}", {
    params: { path },
  });
  if (got.error) throw new Error(describe(got.error));
  const role: Schemas["FolderRole"] | null = null;
  void role;
  const raw = await client.GET("/v1/accounts/{account_id}/messages/{message_id}/raw", {
    params: { path },
    parseAs: "blob",
  });
  if (raw.error) throw new Error(describe(raw.error));
  const source: Blob = raw.data;
  const names: string[] = got.data.attachments.map((a) => a.filename ?? a.id);
  void names;
  return { message: got.data, source };
}

export async function flagAndMove(
  client: ReturnType<typeof mailgate>,
  accountId: string,
  messageId: string,
  folderId: string,
): Promise<boolean> {
  const { data, error } = await client.PATCH(
    "/v1/accounts/{account_id}/messages/{message_id}",
    {
      params: { path: { account_id: accountId, message_id: messageId } },
      body: { flagged: true, folder_id: folderId },
    },
  );
  if (error) throw new Error(describe(error));
  return data.flags.flagged;
}

export async function subscribe(client: ReturnType<typeof mailgate>, url: string) {
  const events: Schemas["EventPattern"][] = ["message.*", "folder.created"];
  const { data, error } = await client.POST("/v1/webhooks", { body: { url, events } });
  if (error) throw new Error(describe(error));
  const secret: string = data.secret;
  // @ts-expect-error: not an event type
  const wrong: Schemas["EventType"] = "message.exploded";
  void wrong;
  return secret;
}

/** What a webhook receiver gets for new mail. */
export function onCreated(
  event: webhooks["message.created"]["post"]["requestBody"]["content"]["application/json"],
): string {
  return `${event.data.account_id}: ${event.data.subject ?? ""}`;
}
