// Errors as EKS puts them on the wire. The SDK's restJson1 deserializer picks the error type from the
// `x-amzn-errortype` header first (then `code`, then `__type` in the body) and the text from `message`.

export type EksErrorType =
  | 'InvalidParameterException'
  | 'InvalidRequestException'
  | 'ResourceLimitExceededException'
  | 'ResourceNotFoundException'
  | 'ResourceInUseException'
  | 'ServerException'
  | 'ServiceUnavailableException'
  | 'ThrottlingException'
  | 'SerializationException'
  | 'UnknownOperationException'
  // 403 for a caller IAM does not authorize (the EKS API reference's AccessDeniedException).
  | 'AccessDeniedException';

const STATUS: Record<EksErrorType, number> = {
  InvalidParameterException: 400,
  InvalidRequestException: 400,
  ResourceLimitExceededException: 400,
  ResourceNotFoundException: 404,
  ResourceInUseException: 409,
  ServerException: 500,
  ServiceUnavailableException: 503,
  ThrottlingException: 429,
  SerializationException: 400,
  UnknownOperationException: 404,
  AccessDeniedException: 403,
};

export class EksApiError extends Error {
  readonly status: number;

  constructor(
    readonly type: EksErrorType,
    message: string,
    /** Extra members of the modelled exception, e.g. clusterName. */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = type;
    this.status = STATUS[type];
  }

  body(): Record<string, string> {
    return { ...this.fields, message: this.message };
  }
}

/** The error an injected fault of this HTTP status stands for. */
export function faultError(status: 429 | 500 | 503): EksApiError {
  switch (status) {
    case 429:
      return new EksApiError('ThrottlingException', 'Rate exceeded');
    case 503:
      return new EksApiError('ServiceUnavailableException', 'Service unavailable. Please try again later.');
    default:
      return new EksApiError('ServerException', 'An internal error occurred. Please try again later.');
  }
}
