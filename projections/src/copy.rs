//! PostgreSQL's binary `COPY … FROM STDIN`: rows streamed into a table without a statement
//! to parse per row or arrays to take apart. Each field is written in the binary form of a
//! bound parameter, by sqlx's own encoders.

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgConnection, Postgres};
use sqlx::Encode;

/// Rows for one binary `COPY`, built in memory and sent at once.
pub(crate) struct CopyRows {
    buffer: PgArgumentBuffer,
    columns: i16,
    /// Fields written of the current row.
    fields: i16,
}

impl CopyRows {
    /// The file header: signature, flags, header extension length.
    const HEADER: &'static [u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

    pub(crate) fn new(columns: i16) -> Self {
        let mut buffer = PgArgumentBuffer::default();
        buffer.extend_from_slice(Self::HEADER);
        Self {
            buffer,
            columns,
            fields: columns,
        }
    }

    /// Starts a row; its fields follow, in the statement's column order.
    pub(crate) fn row(&mut self) -> &mut Self {
        debug_assert_eq!(self.fields, self.columns, "the last row is incomplete");
        self.buffer.extend_from_slice(&self.columns.to_be_bytes());
        self.fields = 0;
        self
    }

    /// Writes the next field of the row (`None` as NULL).
    pub(crate) fn field<'q, T: Encode<'q, Postgres>>(
        &mut self,
        value: &T,
    ) -> Result<&mut Self, BoxDynError> {
        self.framed(|buffer| value.encode_by_ref(buffer))
    }

    /// Writes the next field of the row as `jsonb` (its binary form: a version byte and
    /// the text).
    pub(crate) fn jsonb_field(
        &mut self,
        value: &impl serde::Serialize,
    ) -> Result<&mut Self, BoxDynError> {
        self.framed(|buffer| {
            buffer.push(1);
            serde_json::to_writer(&mut **buffer, value)?;
            Ok(sqlx::encode::IsNull::No)
        })
    }

    /// Writes a field: its length (-1 for NULL), then what `write` put in the buffer.
    fn framed(
        &mut self,
        write: impl FnOnce(&mut PgArgumentBuffer) -> Result<sqlx::encode::IsNull, BoxDynError>,
    ) -> Result<&mut Self, BoxDynError> {
        debug_assert!(self.fields < self.columns, "more fields than columns");
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; 4]);
        let length = match write(&mut self.buffer)? {
            sqlx::encode::IsNull::Yes => {
                self.buffer.truncate(start + 4);
                -1
            }
            sqlx::encode::IsNull::No => i32::try_from(self.buffer.len() - start - 4)?,
        };
        self.buffer[start..start + 4].copy_from_slice(&length.to_be_bytes());
        self.fields += 1;
        Ok(self)
    }

    /// Sends the rows with `COPY <target> FROM STDIN`, `target` being the table and its
    /// columns in the order the fields were written. Answers the rows copied.
    pub(crate) async fn send(
        mut self,
        conn: &mut PgConnection,
        target: &str,
    ) -> Result<u64, sqlx::Error> {
        debug_assert_eq!(self.fields, self.columns, "the last row is incomplete");
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn
            .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
            .await?;
        if let Err(error) = copy.send(&self.buffer[..]).await {
            // Leave the connection usable; the error that matters is the first.
            let _ = copy.abort("the rows could not be sent").await;
            return Err(error);
        }
        copy.finish().await
    }
}
