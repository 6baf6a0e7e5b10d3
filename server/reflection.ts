// gRPC server reflection (v1 and v1alpha), so generic tools (grpcurl, grpcui, Postman) can list,
// describe and call the server without the .proto files. The descriptors come from proto/ and
// the health package's proto, read once at start.
//
// proto-loader describes one file per package and leaves each file's `dependency` list empty
// (grpc-node issue 2595); tools that link descriptors strictly, as grpcurl does, then cannot
// resolve google.protobuf.Timestamp. withDependencies() fills the lists in.
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type * as grpc from "@grpc/grpc-js";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { protoPath as healthProtoPath } from "grpc-health-check";

export const SIGNALING_SERVICE_NAME = "icetest.signaling.v1.SignalingService";

const PROTO_DIR = fileURLToPath(new URL("../proto/", import.meta.url));
const SIGNALING_PROTO = "icetest/signaling/v1/signaling.proto";
// grpc-health-check ships health/v1/health.proto under its own proto/ folder.
const HEALTH_PROTO_DIR = dirname(dirname(dirname(healthProtoPath)));

// protobufjs's descriptor codec, the one proto-loader and @grpc/reflection use themselves (imported,
// not required at run time, so that bundles carry it).
const { FileDescriptorProto } = descriptor as unknown as { FileDescriptorProto: DescriptorCodec };

interface DescriptorCodec {
  decode(bytes: Uint8Array): FileDescriptor;
  encode(file: FileDescriptor): { finish(): Uint8Array };
}

interface MessageDescriptor {
  name: string;
  field?: Array<{ typeName?: string }>;
  nestedType?: MessageDescriptor[];
  enumType?: Array<{ name: string }>;
}

interface FileDescriptor {
  name: string;
  package?: string;
  dependency: string[];
  messageType?: MessageDescriptor[];
  enumType?: Array<{ name: string }>;
  service?: Array<{ name: string; method?: Array<{ inputType?: string; outputType?: string }> }>;
}

export function addReflection(server: grpc.Server): void {
  const definitions = loadSync([SIGNALING_PROTO, relative(HEALTH_PROTO_DIR, healthProtoPath)], {
    includeDirs: [PROTO_DIR, HEALTH_PROTO_DIR],
    // Field names as written in the .proto (peer_id), which tools show and JSON mapping expects.
    keepCase: true,
  });
  new ReflectionService(withDependencies(definitions)).addToServer(server);
}

/** The same definitions, each file descriptor naming the files whose types it uses. */
function withDependencies(definitions: PackageDefinition): PackageDefinition {
  const files = new Map<string, FileDescriptor>();
  for (const entry of Object.values(definitions)) {
    for (const bytes of protosOf(entry) ?? []) {
      const file = FileDescriptorProto.decode(bytes);
      if (!files.has(file.name)) files.set(file.name, file);
    }
  }
  const owner = new Map<string, string>();
  for (const file of files.values()) for (const name of declaredTypes(file)) owner.set(name, file.name);
  const encoded = new Map<string, Buffer>();
  for (const file of files.values()) {
    const scope = file.package ? `.${file.package}` : "";
    const used = new Set([...referencedTypes(file)].map((name) => resolve(owner, name, scope)).filter((name) => name !== undefined && name !== file.name));
    file.dependency = [...used] as string[];
    encoded.set(file.name, Buffer.from(FileDescriptorProto.encode(file).finish()));
  }
  const patched: PackageDefinition = {};
  for (const [name, entry] of Object.entries(definitions)) {
    const protos = protosOf(entry)?.map((bytes) => encoded.get(FileDescriptorProto.decode(bytes).name) ?? Buffer.from(bytes));
    patched[name] = protos ? ({ ...entry, fileDescriptorProtos: protos } as typeof entry) : entry;
  }
  return patched;
}

/** The file declaring `ref`, looked up as protobuf does: absolute, or from `scope` outwards. */
function resolve(owner: Map<string, string>, ref: string, scope: string): string | undefined {
  if (ref.startsWith(".")) return owner.get(ref);
  for (let outer = scope; ; outer = outer.slice(0, Math.max(0, outer.lastIndexOf(".")))) {
    const file = owner.get(`${outer}.${ref}`);
    if (file !== undefined || outer === "") return file;
  }
}

/** Message and enum definitions carry descriptors; services (objects of methods) do not. */
function protosOf(entry: PackageDefinition[string]): Buffer[] | undefined {
  const protos = (entry as { fileDescriptorProtos?: unknown }).fileDescriptorProtos;
  return Array.isArray(protos) ? (protos as Buffer[]) : undefined;
}

/** Fully qualified names with a leading dot, as descriptors refer to them. */
function declaredTypes(file: FileDescriptor): string[] {
  const prefix = file.package ? `.${file.package}` : "";
  const names = (file.enumType ?? []).map((type) => `${prefix}.${type.name}`);
  const visit = (message: MessageDescriptor, scope: string) => {
    const name = `${scope}.${message.name}`;
    names.push(name, ...(message.enumType ?? []).map((type) => `${name}.${type.name}`));
    for (const nested of message.nestedType ?? []) visit(nested, name);
  };
  for (const message of file.messageType ?? []) visit(message, prefix);
  return names;
}

function referencedTypes(file: FileDescriptor): Set<string> {
  const names = new Set<string>();
  const visit = (message: MessageDescriptor) => {
    for (const field of message.field ?? []) if (field.typeName) names.add(field.typeName);
    for (const nested of message.nestedType ?? []) visit(nested);
  };
  for (const message of file.messageType ?? []) visit(message);
  for (const service of file.service ?? []) {
    for (const method of service.method ?? []) for (const type of [method.inputType, method.outputType]) if (type) names.add(type);
  }
  return names;
}
